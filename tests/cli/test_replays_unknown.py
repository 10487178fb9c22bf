"""attack29a F10: an ad replayed by older code (its record and its next DLQ entry carry ``replayOf`` but no
``replays``: the old code kept no count) read as never replayed in ``dlq list``, ``dlq show`` and ``ads get``.
Now each says it was replayed, count unknown; a counted replay and a first death read as before."""

from __future__ import annotations

import io

from rich.console import Console

from gamead_cli.commands.dlq_views import attempts_cell
from gamead_cli.record_views import ad_view, dlq_entry_view

_ENTRY = {"adId": "01m8y3ww939z0f912jjy3brrz8", "title": "Sky Saga", "priority": 3, "attempts": 5,
          "errorClass": "RetryableError", "errorMessage": "injected", "retryable": True,
          "firstFailureAt": "2026-12-01T18:30:00Z", "lastFailureAt": "2026-12-01T18:40:00Z",
          "deadAt": "2026-12-01T18:40:00Z", "submittedAt": "2026-12-01T18:29:59Z",
          "ad": {"title": "Sky Saga", "genre": "RPG"}}
_RECORD = {"id": "01m8y3ww939z0f912jjy3brrz8", "status": "dead", "priority": 3, "attempts": 5,
           "submittedAt": "2026-12-01T18:29:59Z", "completedAt": "2026-12-01T18:40:00Z",
           "ad": {"title": "Sky Saga", "genre": "RPG"},
           "error": {"errorClass": "RetryableError", "message": "injected", "at": "2026-12-01T18:40:00Z"}}


def _shown(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=120, no_color=True).print(renderable)
    return " ".join(out.getvalue().split())


def test_a_dlq_entry_replayed_by_older_code_says_replayed_count_unknown() -> None:
    old = {**_ENTRY, "replayOf": 10}
    assert attempts_cell(old) == "5 ↻?"
    shown = _shown(dlq_entry_view(old))
    assert "replayed from the DLQ (count unknown: by an older gamead), then dead again" in shown, shown
    assert "5 analysis attempts since its last replay" in shown, shown


def test_an_ad_replayed_by_older_code_says_replayed_count_unknown() -> None:
    assert "replayed from the DLQ (count unknown: by an older gamead)" in _shown(ad_view({**_RECORD, "replayOf": 10}))
    assert "replayed 2× from the DLQ" in _shown(ad_view({**_RECORD, "replayOf": 10, "replays": 2}))


def test_counted_replays_and_first_deaths_read_as_before() -> None:
    assert attempts_cell({**_ENTRY, "replayOf": 10, "replays": 1}) == "5 ↻1"
    assert attempts_cell(_ENTRY) == "5"
    assert "replayed" not in _shown(dlq_entry_view(_ENTRY))
    assert "replayed" not in _shown(ad_view(_RECORD))
