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


def test_the_dashboards_details_and_audit_say_what_they_count() -> None:
    """``gamead top``: a DLQ entry's details said ``attempts 1`` (``dlq show``: ``1 analysis attempt``); the audit's
    WHAT of an override cleared or replaced said ``removing 3 (by alice)``, ``replacing 5 (by bob)``: 3 of what."""
    from gamead_cli.tui.view_audit import audit_selection
    from gamead_cli.tui.view_details import details_view

    assert "attempts 1 analysis attempt" in _text(details_view({"adId": "01m93x", "attempts": 1}, now=NOW))
    cleared = {"action": "scale.clear", "details": {"removes": {"replicas": 3, "setBy": "alice"}}}
    assert audit_selection(cleared) == "removing an override of 3 workers (by alice)"
    replaced = {"action": "scale.set", "details": {"replicas": 4, "forSeconds": 600, "replaces": {"replicas": 5,
                                                                                            "setBy": "bob"}}}
    assert audit_selection(replaced) == "replicas 4 for 10m00s, replacing an override of 5 workers (by bob)"
