"""The CLI's clock is the service's (attack33a F10): the ``Date`` of the API's answers sets it, ages are printed and
resolved on it, a machine clock off by more than a few seconds is said once, and a time window is written out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import typer

from gamead_cli import service_clock
from gamead_cli.commands.dlq_filters import window_options
from gamead_cli.formats import utc_when, window_text
from gamead_core import clock


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    service_clock.forget()
    yield
    service_clock.forget()


def _answer_dated(offset: float) -> None:
    """An answer whose ``Date`` is this machine's time + ``offset`` seconds (a service that far ahead)."""
    at = datetime.fromtimestamp(time.time() + offset, timezone.utc)
    sent = clock.local()
    service_clock.note(format_datetime(at, usegmt=True), sent, clock.local())


def test_the_date_header_is_read_as_the_middle_of_its_second() -> None:
    assert service_clock.date_seconds("Fri, 04 Dec 2026 02:46:12 GMT") == \
        datetime(2026, 12, 4, 2, 46, 12, tzinfo=timezone.utc).timestamp() + 0.5
    assert service_clock.date_seconds(None) is None
    assert service_clock.date_seconds("yesterday") is None


def test_ages_are_printed_on_the_service_clock(capsys: pytest.CaptureFixture[str]) -> None:
    _answer_dated(-7200)  # this machine 2 h ahead of the service
    assert abs(service_clock.now() - (time.time() - 7200)) < 2
    ten_s_ago = (datetime.now(timezone.utc) - timedelta(hours=2, seconds=10)).isoformat()
    shown = utc_when(ten_s_ago)
    ago = shown.split("(")[1]  # ~10 s (the header's second: ± 1 s); before: (2h00m ago)
    assert ago.endswith("s ago)") and "m" not in ago and "h" not in ago and float(ago.split("s")[0]) > 5, shown
    assert "this machine's clock is 2h00m ahead of the service's" in capsys.readouterr().err


def test_the_skew_is_said_once_rounded_and_not_within_a_few_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    assert service_clock.skew_text(3.0) is None and service_clock.skew_text(None) is None
    # not past SAY_OVER by more than the sample's error: an answer a paused API held 8 s (±4.5 s) says nothing
    assert service_clock.skew_text(-5.0, 4.5) is None and service_clock.skew_text(-6.0, 1.5) is None
    assert "is 7.0s ahead of the service's" in str(service_clock.skew_text(-7.0, 1.5))
    assert "is 10m00s behind the service's" in str(service_clock.skew_text(599.4))
    assert "is 2h00m ahead of the service's" in str(service_clock.skew_text(-7199.2))
    _answer_dated(2.0)
    assert capsys.readouterr().err == ""
    _answer_dated(600)
    _answer_dated(600)
    assert capsys.readouterr().err.count("10m00s behind") == 1


def test_the_dashboard_holds_the_line_until_it_gives_the_terminal_back(capsys: pytest.CaptureFixture[str]) -> None:
    with service_clock.held():
        _answer_dated(-600)
        assert capsys.readouterr().err == ""
    assert "10m00s ahead of the service's" in capsys.readouterr().err


def test_a_window_is_written_out_in_utc() -> None:
    assert window_text({"until": "2026-12-04T01:46:12.5+00:00"}) == "dead before 2026-12-04 01:46:12 UTC"
    assert window_text({"since": "2026-12-04T01:00:00Z", "until": "2026-12-04T02:00:00Z"}, "") == \
        "at or after 2026-12-04 01:00:00 UTC and before 2026-12-04 02:00:00 UTC"
    assert window_text({}) == ""


def test_an_age_and_an_iso_time_are_compared_on_the_service_clock_only() -> None:
    # `--since <90 min ago> --until 1h`: in order on the clock the age is resolved on, whatever this one says
    service_now = datetime.now(timezone.utc)
    since = (service_now - timedelta(minutes=90)).isoformat()
    window_options(since, "1h")  # the usage check on this machine's clock leaves the order to the service's
    with pytest.raises(typer.BadParameter):
        window_options(since, "2h", now=service_now)
    assert window_options(since, "1h", now=service_now)["until"] == (service_now - timedelta(hours=1)).isoformat()


def test_a_window_far_back_writes_its_year_with_four_digits() -> None:
    """newcomer33 F6: `strftime("%Y")` wrote the year 3 as `3-08-12`."""
    assert window_text({"since": "0003-08-12T00:00:00Z"}) == "dead at or after 0003-08-12 00:00:00 UTC"
    assert utc_when("0999-01-02T03:04:05Z").startswith("0999-01-02 03:04:05 UTC")


def test_a_time_within_the_service_clocks_error_after_now_reads_as_now() -> None:
    """A fresh-clone run of test_review_c6: `gamead dlq show` of an entry dead a moment before printed `dead at
    2026-12-04 14:47:49 UTC` with no age, its time 0.x s after the CLI's estimate of the service's now (known
    within ± 0.5 s + half a round trip). Within JUST_NOW (1.5 s) it reads `(0.0s ago)`; later, no age, as before."""
    now = datetime(2026, 12, 4, 14, 47, 49, 100_000, tzinfo=timezone.utc)
    assert utc_when("2026-12-04T14:47:49.400Z", now=now) == "2026-12-04 14:47:49 UTC (0.0s ago)"
    assert utc_when("2026-12-04T14:47:55Z", now=now) == "2026-12-04 14:47:55 UTC"  # 5.9 s ahead: no age
    assert utc_when("2026-12-04T14:47:39Z", now=now).endswith("(10s ago)")
