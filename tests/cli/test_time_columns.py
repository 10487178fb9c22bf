"""Every time column of every table says its zone (ops13 finding 3: `gamead ads list`'s SUBMITTED showed
`13:06:30` with no zone while `dlq list`, `dlq jobs` and `audit` said `(UTC)`), through one helper."""

from __future__ import annotations

import io
import re
from typing import Any

from rich.console import Console, RenderableType

from gamead_cli.commands import audit, dlq_views, scale
from gamead_cli.fitted import FittedTable
from gamead_cli.formats import time_column
from gamead_cli.record_views import ads_table
from gamead_cli.tui import view_audit, view_tables

AT = "2026-12-01T13:06:30.123Z"
_CLOCK = re.compile(r"\b\d\d:\d\d(:\d\d)?\b")


def _text(table: RenderableType, width: int = 200) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


def _tables() -> dict[str, RenderableType]:
    entry: dict[str, Any] = {"adId": "ad_1", "priority": 3, "attempts": 1, "errorClass": "TaskTimeout",
                             "errorMessage": "slow", "deadAt": AT, "title": "An ad"}
    job = {"id": "j1", "kind": "replay", "state": "running", "phase": "acting", "counts": {}, "startedBy": "ann",
           "createdAt": AT, "selection": {"mode": "all"}}
    record = {"at": AT, "actor": "ann", "action": "dlq.replay", "outcome": "succeeded", "ads": 2}
    return {
        "ads list": ads_table([{"id": "ad_1", "status": "queued", "priority": 3, "submittedAt": AT, "title": "x"}]),
        "dlq list": dlq_views.entries_table({"items": [entry]}),
        "dlq jobs": dlq_views.jobs_table({"items": [job]}),
        "audit": audit._table({"items": [record]}, 200),
        "scale status": scale._decisions_table([{"at": AT, "current": 1, "desired": 2, "applied": True}]),
        "top: dlq": FittedTable(view_tables.DLQ_COLUMNS, [view_tables.dlq_row(entry)], flex="MESSAGE"),
        "top: audit": view_audit.audit_table({"items": [record]}, header=True),
    }


def test_every_time_column_says_its_zone() -> None:
    for name, table in _tables().items():
        header, *rows = [line for line in _text(table).splitlines() if line.strip()]
        assert any(_CLOCK.search(row) for row in rows), (name, rows)  # the table does show a time
        assert "(UTC)" in header, f"{name}: {header!r}"
    assert time_column("SUBMITTED") == "SUBMITTED (UTC)"
