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


def test_a_time_of_another_year_shows_its_year_in_dead_at_and_created() -> None:
    """attack41a F3: ``dlq list``'s DEAD AT (and ``top``'s, ``dlq jobs``' CREATED) cut the year off, so entries
    imported with deadAt 0001-01-01, 1970-01-01 and 2020-01-01 all read ``01-01 00:00:00``. A time of another year
    now shows it; one of this year keeps the short ``MM-DD HH:MM:SS``. Without the fix: ``01-01 00:00:00`` alone."""
    from datetime import datetime, timezone

    from gamead_cli.formats import month_time

    this_year = datetime.now(timezone.utc).year
    assert month_time(f"{this_year}-12-01T13:06:30.123Z") == "12-01 13:06:30"
    assert month_time("1970-01-01T00:00:00Z", this_year=2026) == "1970-01-01 00:00:00"
    assert month_time("0001-01-01T00:00:00+00:00", this_year=2026) == "0001-01-01 00:00:00"
    assert month_time(None) == "-" and month_time("not a time") == "not a time"
    for old in ("0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2020-01-01T00:00:00Z"):
        entry = {"adId": "ad_1", "priority": 3, "attempts": 1, "errorClass": "TaskTimeout", "errorMessage": "slow",
                 "deadAt": old, "title": "An ad"}
        job = {"id": "j1", "kind": "replay", "state": "running", "phase": "acting", "counts": {},
               "startedBy": "ann", "createdAt": old, "selection": {"mode": "all"}}
        shown = old[:10] + " 00:00:00"
        for name, table in {"dlq list": dlq_views.entries_table({"items": [entry]}),
                            "dlq jobs": dlq_views.jobs_table({"items": [job]}),
                            "top: dlq": FittedTable(view_tables.DLQ_COLUMNS, [view_tables.dlq_row(entry)],
                                                    flex="MESSAGE")}.items():
            assert shown in _text(table), (name, old, _text(table))
