"""attack46 F7: when a request the API answered 429 (its rate limiter: nothing was done) is sent again, and until
when — pure (:mod:`gamead_cli.pacing`), no server: ``Retry-After`` plus up to 20 % at random, and retries that end
6 × ``client.retry_for`` after the later of the request's start and the client's last request let through."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from gamead_cli import pacing, retry


def most(low: float, high: float) -> float:
    return high


def least(low: float, high: float) -> float:
    return low


def test_a_429_waits_its_retry_after_and_at_most_a_fifth_more() -> None:
    assert pacing.answer_wait(429, "2", 0.0, uniform=least) == 2.0
    assert pacing.answer_wait(429, "2", 0.0, uniform=most) == pytest.approx(2.4)


def test_a_429_retry_after_given_as_a_date_is_read_so() -> None:
    now = datetime(2026, 12, 5, 22, 0, 0, tzinfo=timezone.utc)
    later = format_datetime(now.replace(second=3), usegmt=True)
    assert pacing.answer_wait(429, later, now.timestamp(), uniform=least) == 3.0


@pytest.mark.parametrize("status", [503, 409])
def test_a_503_or_a_409_waits_its_retry_after_as_read(status: int) -> None:
    assert pacing.answer_wait(status, "2", 0.0, uniform=most) == 2.0


@pytest.mark.parametrize("status", [429, 503])
def test_no_retry_after_leaves_the_back_off(status: int) -> None:
    assert pacing.answer_wait(status, None, 0.0, uniform=most) is None
    assert pacing.answer_wait(status, "soon", 0.0, uniform=most) is None


def test_a_429s_retry_after_0_leaves_the_back_off() -> None:
    """probe47 F2: a 429 storm with ``Retry-After: 0`` (a proxy's; gamead says >= 1) was sent again at once, 403
    requests in 18 s of ``client.retry_for`` 3 (6 x 3 s); a 503's 0 is still read as it is."""
    assert pacing.answer_wait(429, "0", 0.0, uniform=most) is None
    assert pacing.answer_wait(503, "0", 0.0, uniform=most) == 0.0


def test_a_429s_retries_end_six_retry_for_after_the_clients_last_request_let_through_when_later() -> None:
    """A command whose other requests keep passing (a submit's threads) keeps sending the refused one again; one
    that sends one request at a time has 6 × ``retry_for`` of it (attack46 F7: 2 s starved one of two imports)."""
    assert pacing.retries_end(429, started=100.0, through=130.0, retry_for=10.0) == 190.0
    assert pacing.retries_end(429, started=100.0, through=50.0, retry_for=10.0) == 160.0  # before it: its start


def test_a_503s_retries_end_retry_for_after_the_requests_start_whatever_passed_since() -> None:
    assert pacing.retries_end(503, started=100.0, through=130.0, retry_for=10.0) == 110.0


def test_a_callers_bound_ends_the_retries_before_it() -> None:
    assert pacing.retries_end(429, started=100.0, through=130.0, retry_for=10.0, until=150.0) == 150.0 - retry.LEAST_TRY


def test_retry_for_0_never_sends_a_429_again() -> None:
    """Its end is now at the latest: :func:`gamead_cli.retry.next_wait` finds no time left for any wait."""
    end = pacing.retries_end(429, started=100.0, through=100.0, retry_for=0.0)
    assert retry.next_wait(1, pacing.answer_wait(429, "0", 0.0), end - 100.0) is None


def test_a_command_refused_429_past_a_few_seconds_says_so_once() -> None:
    """probe47 F3: ``gamead ads list`` against a 429 throughout waited 61 s with nothing on stderr. The line comes
    with the wait that takes the refusal past :data:`pacing.SAY_AFTER` seconds (a long ``Retry-After`` as it
    begins), once a command."""
    assert pacing.SAY_AFTER == 5.0
    assert not pacing.say_limited(100.0, 102.0, 1.0, said=False)  # 3 s refused by the wait's end: quiet
    assert pacing.say_limited(100.0, 104.0, 1.0, said=False)  # 5 s by its end: said as it begins
    assert pacing.say_limited(100.0, 100.0, 30.0, said=False)  # a Retry-After of 30 s: said at once
    assert not pacing.say_limited(100.0, 140.0, 4.0, said=True)  # once a command
    assert pacing.limited_text(datetime(2026, 12, 6, 1, 2, 3, tzinfo=timezone.utc).timestamp()) == \
        "rate limited by the API (HTTP 429); trying again until 01:02:03 UTC"
