"""attack47 F1: ``gamead audit``'s ADS column writes a count as every count the CLI prints, ``2,181`` (regress44
F7's rule). A purge of 2,181 entries showed ``purge  all  2181  succeeded`` beside its job card's ``purged 2,181 of
3,003 matched`` and the dashboard's audit panel's ``2,181 ads``."""

from __future__ import annotations

from rich.console import Console

from gamead_cli.commands.audit import _table

RECORD = {"at": "2026-12-05T22:28:04Z", "actor": "anonymous", "action": "purge", "selection": {"mode": "all"},
          "ads": 2181, "outcome": "succeeded", "jobId": "01m9453j4ckt7e6kafaz87ydxn"}


def test_the_ads_column_separates_thousands() -> None:
    console = Console(width=160, record=True)
    console.print(_table({"items": [RECORD, {**RECORD, "ads": 7}]}, 160))
    rows = console.export_text().splitlines()[1:]
    assert "2,181" in rows[0] and "2181" not in rows[0]
    assert " 7 " in rows[1]
