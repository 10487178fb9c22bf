"""The header's node counts are the nodes table's (tui42 F2).

The header read its counts from ``/v1/stats`` and the nodes table its rows from ``/v1/workers``: two requests, 2-3 s
apart on a loaded box (``/v1/stats`` took 2.3-3.2 s), the registry re-read between them. After a ``kill -9`` of a
worker and a scale-down the screen read ``5 late`` above a table titled ``2 late · 3 stuck``, ``1 gone`` above a table
with no gone row, ``4 workers`` above ``nodes · 3 workers``. The payload here is such a pair of answers: stats as of
the earlier registry read (3 workers, 2 late, 1 gone, 9/12 slots), the workers' items as of the later one (2 workers,
one of them stuck, 6/6 slots). Without the fix both tests fail (the header says ``3 workers``); with it they pass.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from rich.console import Console

from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.view import Snapshot, snapshot_view
from gamead_cli.tui.widgets import SummaryBar
from gamead_cli.tui.widgets_tables import NodesPanel
from tests.tui.conftest import until

EARLIER = {"api": 1, "workers": 3, "late": 2, "stuck": 0, "gone": 1, "draining": 0, "idle": 0,
           "inFlight": 9, "concurrency": 12}


def two_reads(recorded: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(recorded)
    data["stats"]["nodes"] = {**data["stats"]["nodes"], **EARLIER}
    return data


def test_the_dashboard_header_counts_the_nodes_the_table_shows(recorded: dict[str, Any]) -> None:
    async def main() -> None:
        app = DashboardApp(RecordedSource(two_reads(recorded)), refresh=1.0)
        async with app.run_test(size=(160, 40)) as pilot:
            await until(pilot, lambda: app.stats is not None and len(app.nodes) == 3, what="the first refresh")
            header = app.query_one(SummaryBar)
            await until(pilot, lambda: "1 api · 2 workers (6/6 slots busy) 1 stuck" in str(header.render()),
                        what="the header to count the table's nodes")  # before: "3 workers (9/12 …) 2 late 1 gone"
            said = str(header.render())
            assert "late" not in said and "gone" not in said, said
            assert str(app.query_one(NodesPanel).border_title).startswith("nodes · 2 workers · 1 stuck")

    asyncio.run(main())


def test_top_once_header_counts_the_nodes_it_lists(recorded: dict[str, Any]) -> None:
    data = two_reads(recorded)
    console = Console(width=160, record=True, color_system=None)
    console.print(snapshot_view(Snapshot(stats=data["stats"], nodes=data["workers"], dlq=data["dlq"]), "http://x"))
    first = console.export_text().splitlines()[0]
    assert "1 api · 2 workers (6/6 slots busy) 1 stuck" in first, first  # before: "3 workers (9/12 slots busy)"
