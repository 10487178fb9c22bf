"""One reading of a duration (fix34 item 1): ``gamead dlq purge --since 2h30m`` was refused though the CLI prints
ages that way (``2h10m``, ``3m05s``); each place had a parser of its own (``options``, ``scale --for``, the
dashboard's ``scale N for``), none read a compound, and settings in seconds read no unit at all. Now every place
reads :func:`gamead_core.durations.parse_duration`, and every form gamead prints reads back as itself."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import typer
from pydantic import ValidationError

from gamead_cli.commands.dlq_filters import has_age, parse_when
from gamead_cli.commands.scale import parse_duration as scale_for
from gamead_cli.formats import age, ago, took
from gamead_cli.options import duration_between
from gamead_cli.tui.commands import CommandError, parse
from gamead_core.config import GameadSettings
from gamead_core.durations import FORMS, exact_duration, parse_duration
from gamead_core.rate_window import span

READ = [("90", 90), ("1.5", 1.5), ("90s", 90), ("10m", 600), ("2h30m", 9000), ("1d4h", 100_800), ("3m05s", 185),
        ("1.5h", 5400), ("350 ms", 0.35), ("2.5 s", 2.5), ("5 min", 300), ("2h 30m", 9000), (" 2H30M ", 9000),
        ("1w", 604_800), ("10 years", 3650 * 86400), ("0.4s", 0.4), (".5h", 1800), ("1h00m", 3600), ("2 hours", 7200)]
REFUSED = ["", "2x", "-5", "1e3", "30m2h", "1m1m", "inf", "nan", "2h30", "h", "9" * 65, "4m05s ago", "1.2.3s",
           "１２s", "١٢s", "１２", "1_000", "1_0s"]  # digits of other scripts, underscores: attack40a F2


@pytest.mark.parametrize("text, seconds", READ)
def test_every_form_is_read(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", REFUSED)
def test_anything_else_is_refused_naming_the_forms(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert FORMS in str(caught.value) and "2h30m" in str(caught.value) and "1d4h" in str(caught.value)


@pytest.mark.parametrize("seconds", [0.05, 0.4, 9.94, 12, 59.4, 60, 185, 3599, 3600, 9000, 100_800, 3 * 86400 + 17])
def test_every_duration_the_cli_prints_reads_back_as_itself(seconds: float) -> None:
    """``age`` (tables, ``(4m05s ago)``, the clock line's ``2h00m ahead``), ``took`` (doctor) and ``span``
    (sparklines) each read back within what they print (a tenth, a second, a minute)."""
    printed = age(seconds)
    assert parse_duration(printed) == pytest.approx(seconds, abs=0.05 if seconds < 10 else 0.5 if seconds < 60
                                                     else 1 if seconds < 3600 else 60), printed
    assert parse_duration(took(seconds)) == pytest.approx(seconds, rel=0.05, abs=0.05), took(seconds)
    assert parse_duration(span(round(seconds))) == pytest.approx(round(seconds), abs=0.5), span(round(seconds))


def test_an_age_as_printed_is_a_time_for_since_and_until() -> None:
    """``--since 2h30m`` was "cannot read time"; ``(4m05s ago)``, as ``show`` prints it, reads too."""
    now = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
    assert parse_when("2h30m", now=now) == (now - timedelta(hours=2, minutes=30)).isoformat()
    assert parse_when("1d4h", now=now) == (now - timedelta(days=1, hours=4)).isoformat()
    assert parse_when(ago(245), now=now) == (now - timedelta(seconds=245)).isoformat()
    assert has_age("2h30m") and not has_age("2026-12-04T01:00")


def test_scale_for_and_the_dashboard_read_the_same() -> None:
    assert scale_for("1h30m") == 5400 and scale_for("1d4h") == 100_800
    with pytest.raises(typer.BadParameter, match="2h30m"):
        scale_for("30m2h")
    assert parse("scale 4 for 2h30m").args["seconds"] == 9000
    with pytest.raises(CommandError, match="1d4h"):
        parse("scale 4 for soon")


def test_options_in_seconds_take_a_duration_within_their_bounds() -> None:
    """``--refresh``, ``--timeout``, ``--settle``, ``--give-up-after`` were floats: ``--timeout 2m`` refused."""
    refresh = duration_between(0.2, 60)
    assert refresh("500ms") == 0.5 and refresh("1.0") == 1.0 and refresh(1.0) == 1.0 and refresh(None) is None
    with pytest.raises(typer.BadParameter, match="must be 0.2s to 1m, not 2m"):
        refresh("2m")
    with pytest.raises(typer.BadParameter, match="cannot read duration"):
        refresh("2x")


def test_settings_in_seconds_take_a_duration_and_others_do_not() -> None:
    """``queue.ack_wait: 30s`` / ``GAMEAD_DLQ__MAX_AGE=14d`` were "Input should be a valid number"."""
    settings = GameadSettings(queue={"ack_wait": "2m30s"}, dlq={"max_age": "14d"}, registry={"ttl": "1m"})
    assert (settings.queue.ack_wait, settings.dlq.max_age, settings.registry.ttl) == (150, 14 * 86400, 60)
    assert GameadSettings(queue={"ack_wait": "45"}).queue.ack_wait == 45  # a number as text, as before
    with pytest.raises(ValidationError, match="cannot read duration"):
        GameadSettings(queue={"ack_wait": "30 parsecs"})
    with pytest.raises(ValidationError):
        GameadSettings(records={"refuse_at": "1h"})  # a share, not a duration
    for text in ("1_000", "１２s", "１２", "١٢"):  # attack40a F2: Python's float() took them, the durations' rule not
        with pytest.raises(ValidationError, match="cannot read duration"):
            GameadSettings(queue={"ack_wait": text})


def test_the_api_query_in_seconds_takes_a_duration() -> None:
    """``GET /v1/doctor?settle=500ms`` was 422 ("Input should be a valid number"), though ``gamead doctor --settle``
    and ``doctor.settle`` take one now: the query reads the same forms (bounds unchanged: 0 … 10 s)."""
    import asyncio

    import httpx
    from fastapi import FastAPI

    from gamead_core.api.routes_doctor import router

    app = FastAPI()
    app.include_router(router)

    async def status(settle: str) -> tuple[int, str]:  # past validation the route needs a stack: not here
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            resp = await client.get("/v1/doctor", params={"settle": settle})
        return resp.status_code, resp.text

    assert asyncio.run(status("500ms"))[0] != 422
    assert asyncio.run(status("11s"))[0] == 422
    code, text = asyncio.run(status("soon"))
    assert code == 422 and "2h30m" in text


def test_one_formatter_prints_what_the_grammar_reads_as_itself_over_ten_years() -> None:
    """fix35d item 2: ``age`` printed a day and 4 hours as ``28h00m`` (its own hours-and-minutes form past a day),
    not the grammar's ``1d4h``; ``took`` ``75.0 s``. Now both are :func:`format_duration`. Over 0 s to 10 years
    (every power-of-1.01 step, and each unit's edges): what it prints reads back within its last unit, and printing
    that reading gives the same text (figure, before: age(100800) == "28h00m", its reading printed "1d4h")."""
    from gamead_core.durations import format_duration

    assert age(100_800) == "1d4h" and age(3 * 86400 + 17) == "3d" and took(75) == "1m15s" and took(0.35) == "350ms"
    values, v = [0.0, 0.04, 0.5, 0.999, 9.95, 9.96, 59.4, 59.5, 3599.9, 86399.9, 86400.0], 0.001
    while v < 3650 * 86400:
        values.append(v)
        v *= 1.01
    for seconds in values:
        for fine in (False, True):
            printed = format_duration(seconds, fine=fine)
            unit = (0.001 if fine and seconds < 1 else 0.1 if seconds < 10 else 1 if seconds < 3600 else 60
                    if seconds < 86400 else 3600)
            back = parse_duration(printed)
            assert abs(back - seconds) <= unit * 0.5 + 1e-9 if seconds < 60 else 0 <= seconds - back < unit, printed
            assert format_duration(back, fine=fine) == printed, (seconds, printed, back)
    assert age(None) == age(float("nan")) == "-"
    from gamead_cli.tui.view_figures import approx_ms, ms  # the dashboard's latencies, from a minute on

    assert (ms(125_300), approx_ms(125_300), ms(31_030)) == ("2m05s", "≈2m10s", "31.03s")  # were 125.30s, ≈130s
    with pytest.raises(ValueError):
        format_duration(-1)


def test_a_setting_shown_as_a_duration_reads_back_as_itself() -> None:
    """units46: ``gamead config show`` prints each setting in seconds with :func:`exact_duration`: gamead's
    duration (``30s``, ``5m00s``, ``14d``, ``250ms``) when it reads back exactly, else every digit (``12.5s``,
    ``0.0001s``: never an exponent, which no duration reading takes)."""
    shown = {30.0: "30s", 300.0: "5m00s", 14 * 86400: "14d", 0.25: "250ms", 12.5: "12.5s", 1e-4: "0.0001s",
             0.0: "0.0s", 1.5: "1.5s", 60.0: "1m00s",
             # polish47: were 3725.0s, 90061.0s, 90.5s, 86405.0s (bare seconds beside 1m00s and 30d)
             3725.0: "1h02m05s", 90061.0: "1d1h01m01s", 90.5: "1m30.5s", 86405.0: "1d0h00m05s", 60.25: "1m00.25s"}
    assert {s: exact_duration(s) for s in shown} == shown
    v = 0.001
    while v < 3650 * 86400:
        for seconds in (v, round(v, 3), float(int(v))):
            assert parse_duration(exact_duration(seconds)) == seconds, (seconds, exact_duration(seconds))
        v *= 1.07
