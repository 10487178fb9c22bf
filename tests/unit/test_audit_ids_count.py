"""newcomer46: ``gamead audit`` (and the dashboard's audit panel) said ``1 ids`` for a replay of one ad by id
(``gamead dlq replay ID --yes``). A count of ids reads as one: ``1 id``, ``3 ids``, ``10,000 ids``."""

from __future__ import annotations

from rich.console import Console

from gamead_cli.tui.view_audit import audit_selection, audit_table


def _replay(ids: object) -> dict:
    return {"action": "replay", "outcome": "succeeded", "actor": "anonymous", "at": "2026-12-05T19:48:09Z",
            "selection": {"mode": "ids", "ids": ids}, "ads": ids}


def test_one_id_is_singular_and_many_are_counted_with_separators() -> None:
    assert audit_selection(_replay(1)) == "1 id"
    assert audit_selection(_replay(3)) == "3 ids"
    assert audit_selection(_replay(10_000)) == "10,000 ids"
    assert audit_selection(_replay(None)) == "? ids"


def test_the_audit_table_shows_one_id_as_one() -> None:
    console = Console(width=100, record=True)
    console.print(audit_table({"items": [_replay(1)]}))
    text = console.export_text()
    assert "1 id " in text and "1 ids" not in text
