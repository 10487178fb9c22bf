"""A completed ad keeps its last failure as history (session 15 attacker: after a DLQ replay, 118 completed ads
carried the failure that had dead-lettered them, shown as a red "error" beside their analysis)."""

from __future__ import annotations

import io

from rich.console import Console

from gamead_cli.record_views import ad_view

_FAILURE = {"errorClass": "PermanentError", "message": "injected permanent fault", "at": "2026-12-01T18:30:00Z"}
_BASE = {"id": "01m8rdy5e948kng8fkmbqzve15", "priority": 3, "submittedAt": "2026-12-01T18:29:59Z",
         "ad": {"title": "Sky Saga", "genre": "RPG"}, "error": _FAILURE}


def _shown(record: dict) -> str:
    out = io.StringIO()
    Console(file=out, width=120, no_color=True).print(ad_view(record))
    return out.getvalue()


def test_a_replayed_ad_that_completed_shows_its_failure_as_earlier_not_as_its_error() -> None:
    completed = {**_BASE, "status": "completed", "attempts": 1, "replayOf": 7, "completedAt": "2026-12-01T18:40:00Z",
                 "analysis": {"effectivenessScore": 7.5, "components": []}}
    shown = _shown(completed)
    assert "earlier failure" in shown and "PermanentError: injected permanent fault" in shown, shown
    assert "─ error ─" not in shown.replace("╭", "─").replace("┌", "─"), shown


def test_a_dead_or_retrying_ad_shows_its_failure_as_its_error() -> None:
    for record in ({**_BASE, "status": "dead", "attempts": 5},
                   {**_BASE, "status": "queued", "attempts": 1, "retryAt": "2026-12-01T18:31:00Z"}):
        shown = _shown(record)
        assert "earlier failure" not in shown and "PermanentError" in shown, shown
        assert " error " in shown, shown


def test_an_ad_completed_on_its_second_attempt_shows_the_failure_json_carries() -> None:
    """attack25d #10: ``ads get -o json`` of an ad completed on its 2nd attempt carries ``error`` and
    ``firstFailureAt``; the table must say the same: the first failure's time and the recovered failure."""
    record = {**_BASE, "status": "completed", "attempts": 2, "completedAt": "2026-12-01T18:30:05Z",
              "firstFailureAt": "2026-12-01T18:30:00Z",
              "error": {"errorClass": "RetryableError", "message": "injected retryable fault (worker.faults)",
                        "retryable": True, "at": "2026-12-01T18:30:00Z"},
              "analysis": {"effectivenessScore": 7.5, "components": []}}
    shown = " ".join(_shown(record).split())
    assert "first failure 2026-12-01 18:30:00 UTC" in shown, shown
    assert ("recovered: attempt 1 failed with RetryableError: injected retryable fault (worker.faults) "
            "(at 18:30:00 UTC)") in shown, shown
