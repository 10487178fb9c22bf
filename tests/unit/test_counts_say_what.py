"""units46: a count the CLI prints says what it counts (rule 7). ``gamead ads get`` said ``attempts 1`` where
``gamead dlq show`` said ``1 analysis attempt(s)``; both print :func:`gamead_cli.formats.counted` now
(``1 analysis attempt``, ``3 analysis attempts``). Without the fix: ``attempts 3`` alone in ``ads get``."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.console import Console

from gamead_cli.formats import counted
from gamead_cli.record_views import ad_view, dlq_entry_view

NOW = datetime(2026, 12, 5, 20, 0, tzinfo=timezone.utc)


def _text(view: object) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(view)
    return " ".join(console.export_text().split())


def test_counted_says_the_noun_once_or_in_the_plural() -> None:
    assert [counted(n) for n in (0, 1, 2, 2622)] == ["0 ads", "1 ad", "2 ads", "2,622 ads"]
    assert counted(1, "analysis attempt") == "1 analysis attempt" and counted("?", "worker") == "? workers"


def test_ads_get_and_dlq_show_say_attempts_alike() -> None:
    record = {"id": "01m93vt87de7c36pcwdk40d3c2", "status": "dead", "priority": 3, "attempts": 3,
              "submittedAt": "2026-12-05T19:45:06Z", "completedAt": "2026-12-05T19:45:07Z",
              "ad": {"title": "Dragon Kingdom"}}
    entry = {"adId": record["id"], "title": "Dragon Kingdom", "priority": 3, "attempts": 1, "errorClass": "X"}
    assert "attempts 3 analysis attempts" in _text(ad_view(record, now=NOW))
    assert "attempts 1 analysis attempt " in _text(dlq_entry_view(entry, now=NOW)) + " "
