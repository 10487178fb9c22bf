"""attack43b F3: `gamead dlq show` printed `submitted 12:36:11 UTC (5m21s ago)` and `dead at 12:36:12 UTC (5m19s
ago)` for times 1.26 s apart: each age was cut to its whole second on its own (321.0 s and 319.74 s). Now every
age of a page (`dlq show`, `ads get`, `dlq jobs show`, top's details) is told from the page's one ``now`` as the
difference of whole seconds, so two ages differ by exactly what their printed stamps do.

Shown over 2 s of ``now``: before the fix (formats.shown_age returning the exact difference), in 10 ms steps (200
pages per view), dlq show broke it at 52 of 200 pages, ads get at 106, jobs show at 104, top details at 52; now 0.
A page changes only where ``now`` crosses a stamp's fraction of a second (or half of it: an age rounded), so one
page inside each such stretch shows every page of the 2 s (:func:`_nows`: 16-20 a view, not 200; Rich's rendering
was 18 CPU-s of the module); the old shown_age still breaks 6-12 of them per view."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone

from rich.console import Console

from gamead_cli.commands.dlq_views import job_view
from gamead_cli.formats import utc_when
from gamead_cli.record_views import ad_view, dlq_entry_view
from gamead_cli.tui.view_details import details_view
from gamead_core.durations import parse_duration

#: the entry of the finding (01m9338w24xzna6524tsw53acq): submitted 11.460562, dead 12.722202
_ENTRY = {"adId": "01m9338w24xzna6524tsw53acq", "title": "FAIL p4", "priority": 4, "attempts": 1,
          "errorClass": "PermanentError", "errorMessage": "injected", "retryable": False,
          "firstFailureAt": "2026-12-05T12:36:12.689113Z", "lastFailureAt": "2026-12-05T12:36:12.689113Z",
          "deadAt": "2026-12-05T12:36:12.722202Z", "submittedAt": "2026-12-05T12:36:11.460562Z",
          "workerId": "local-2", "ad": {"title": "FAIL p4", "genre": "RPG"}}
_RECORD = {"id": "01m9338w24xzna6524tsw53acq", "status": "dead", "priority": 4, "attempts": 1,
           "submittedAt": "2026-12-05T12:36:11.460562Z", "startedAt": "2026-12-05T12:36:11.998000Z",
           "completedAt": "2026-12-05T12:36:12.722202Z", "firstFailureAt": "2026-12-05T12:36:12.689113Z",
           "ad": {"title": "FAIL p4", "genre": "RPG"}}
_JOB = {"id": "01m9338w24xzna6524tsw53acq", "kind": "replay", "state": "succeeded", "counts": {"matched": 1, "done": 1},
        "selection": {"mode": "filter"}, "startedBy": "op", "createdAt": "2026-12-05T12:36:11.460562Z",
        "startedAt": "2026-12-05T12:36:11.990000Z", "finishedAt": "2026-12-05T12:36:12.722202Z"}
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
_AGE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC \(([^)]+) ago\)")


def _shown(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=200, no_color=True).print(renderable)
    return out.getvalue()


def _nows(data: dict, start: datetime, span: float = 2.0) -> list[datetime]:  # type: ignore[type-arg]
    """One ``now`` inside each stretch of ``span`` s from ``start`` over which no age of a page of ``data`` can change:
    an age is a step function of ``now`` whose steps are where ``now``'s fraction of a second crosses a stamp's
    fraction, a whole second, or half a second past either (an age rounded to the nearest second)."""
    fractions = {0.0, 0.5}
    for value in data.values():
        if isinstance(value, str) and _ISO.fullmatch(value):
            fraction = datetime.fromisoformat(value).timestamp() % 1
            fractions |= {fraction, (fraction + 0.5) % 1}
    base = start.timestamp() // 1
    edges = sorted({start.timestamp(), start.timestamp() + span} | {
        base + whole + fraction for whole in range(int(span) + 2) for fraction in fractions
        if start.timestamp() < base + whole + fraction < start.timestamp() + span})
    return [datetime.fromtimestamp((a + b) / 2, timezone.utc) for a, b in zip(edges, edges[1:])]


def _mismatches(view, data: dict) -> int:  # type: ignore[no-untyped-def]
    """Pages, over 2 s of ``now`` from 5m20s after the entry, whose ages differ by other than their stamps do."""
    bad = 0
    for now in _nows(data, datetime(2026, 12, 5, 12, 41, 31, tzinfo=timezone.utc)):
        page = _shown(view(data, now=now))
        pairs = [(datetime.fromisoformat(stamp).timestamp(), parse_duration(ago)) for stamp, ago in _AGE.findall(page)]
        assert len(pairs) >= 3, page
        first_stamp, first_age = pairs[0]
        bad += any(round(age - first_age) != round(first_stamp - stamp) for stamp, age in pairs[1:])
    return bad


def test_dlq_show_ages_differ_as_their_stamps_do() -> None:
    assert _mismatches(dlq_entry_view, _ENTRY) == 0


def test_ads_get_ages_differ_as_their_stamps_do() -> None:
    assert _mismatches(ad_view, _RECORD) == 0


def test_jobs_show_ages_differ_as_their_stamps_do() -> None:
    assert _mismatches(job_view, _JOB) == 0


def test_top_details_ages_differ_as_their_stamps_do() -> None:
    assert _mismatches(details_view, _ENTRY) == 0


def test_an_age_stays_within_a_second_of_the_truth() -> None:
    """The whole-second age is never more than 1 s off the exact one; under 10 s it is the exact one, in tenths."""
    when = "2026-12-05T12:36:11.460562Z"
    at = datetime(2026, 12, 5, 12, 36, 11, 460562, tzinfo=timezone.utc)
    for ms in range(0, 400_000, 777):
        now = at + timedelta(milliseconds=ms)
        shown = parse_duration(utc_when(when, now=now).split("(")[1].removesuffix(" ago)"))
        assert abs(shown - ms / 1000) < 1.0, (ms, shown)
    assert utc_when(when, now=at + timedelta(seconds=4.04)).endswith("(4.0s ago)")
