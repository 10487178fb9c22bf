"""tui43: every count, rate and duration of ``gamead top`` (live and ``--once``) and of ``gamead workers`` stays in
its column for counts up to 10^12 and ages of years, written with its unit (``12M``, ``1.0T``, ``2.0M/s``,
``31y!``) rather than pushing its neighbours.

Figures (before the fix, a level with PENDING 12,345,678, ACK-P 1,234,567, REDEL 10^12, an OLDEST of 10^9 s and a
MAX WAIT of 100 years; an ack pending of 10^12 and 2,000,000 submitted/s; a worker with 10^12 completed): the live
level row was 22 cells longer than its header at 120x40 (every figure right of PENDING shifted), the metrics row
``submitted 2,000.0k/s`` and ``ack pending 1,000,000,000,000`` were 2 and 9 cells past their column, and the
nodes table of ``gamead workers`` at 80 columns lost UP and HEARTBEAT to a 17-cell COMPLETED.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from rich.console import Console
from textual.widgets import Static

from gamead_cli.formats import age, fit_duration
from gamead_cli.tui import view
from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.view_figures import num, per_second
from gamead_cli.tui.widgets import QueuePanel, SparkRow
from tests.tui.conftest import settled, until

YEAR = 365 * 86400


def _huge(recorded: dict[str, Any]) -> dict[str, Any]:
    """The recording with P4 holding the largest figures a long-lived fleet could show."""
    data = copy.deepcopy(recorded)
    p4 = next(lv for lv in data["stats"]["queue"]["levels"] if lv["priority"] == 4)
    p4.update(pending=12_345_678, ackPending=1_234_567, redelivered=10**12, oldestAgeSeconds=10**9,
              agingHorizonSeconds=100 * YEAR, overHorizon=True, waitP95Ms=10**12)
    data["stats"]["queue"]["ackPending"] = 10**12
    data["stats"]["rates"]["submittedPerSec"] = 2_000_000.0
    data["workers"][1].update(processed=10**12, failed=123_456_789)
    return data


def test_compact_figures_keep_their_unit_and_never_round_up() -> None:
    assert [num(n, 7) for n in (999_999, 1_000_000, 2_300_000, 12_345_678, 10**12, None)] == \
        ["999,999", "1.0M", "2.3M", "12M", "1.0T", "-"]
    assert num(12_345_678) == "12,345,678"  # no width: exact, as before
    assert [num(n, 5) for n in (9_999, 99_999, 999_999)] == ["9,999", "99k", "999k"]
    assert [per_second(r) for r in (999.96, 1_450.0, 123_456.0, 2e6, 999.9e12)] == \
        ["999.9", "1.4k", "123.4k", "2.0M", "999.9T"]
    assert [fit_duration(age(s) + "!", 6) for s in (10**9, 2 * YEAR + 7200, 3 * 86400 + 4 * 3600)] == \
        ["31y!", "730d!", "3d4h!"]
    assert fit_duration(age(100 * YEAR), 5) == "100y"


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 50)])
def test_live_level_and_metric_rows_keep_their_columns(recorded: dict[str, Any], size: tuple[int, int]) -> None:
    """The live dashboard: P4's row ends where its header's P95 ends (at 80x24 where the panel is compact, where
    MAX ends) and each figure sits under its label; the metrics rows are their 31 cells (label 11, value 8, unit 10).
    Without the fix (5 failed of 5 in this module; 5 passed with): the P4 row 22 cells long at 120x40
    (``12,345,678 1,234,567 1,000,000,000,000 11574d! 36500d ≈11574d``), 9 at 80x24; submitted ``2,000.0k/s``;
    ``ack pending`` 2 cells longer than the other metrics rows."""
    async def main() -> None:
        app = DashboardApp(RecordedSource(_huge(recorded)), refresh=3600)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.stats is not None, what="the first refresh")
            await settled(pilot)
            row = app.query_one("#level-4", SparkRow).text
            panel = app.query_one(QueuePanel)
            header = str(panel.query_one(".header", Static).content).removesuffix("  DEPTH")  # as shown
            cells = {"PENDING": "12M", "ACK-P": "1.2M", "REDEL": "1.0T", "OLDEST": "31y!", "MAX": "100y",
                     "P95": "≈31y"}
            print(header, row, sep="\n")
            assert len(row) == len(header), (header, row)
            for label, cell in cells.items():
                if label in header:
                    assert row[:header.index(label) + len(label)].endswith(cell), (label, header, row)
            queued = app.query_one("#metric-submitted").query_one(SparkRow).text
            inflight = app.query_one("#metric-inflight").query_one(SparkRow).text
            # label 11, value 8, what it counts 10 (units46: the figure ``2.0M/s`` said no more than per second)
            assert queued.split() == ["queued", "2.0M", "ads/s"] and len(queued) == 31, queued
            assert inflight.split() == ["ack", "pending", "1.0T", "ads"] and len(inflight) == 31, inflight

    asyncio.run(main())


def test_once_and_workers_tables_keep_their_columns(recorded: dict[str, Any]) -> None:
    """``gamead top --once`` (160 columns) shows P4's counts as ``12M 1.2M 1.0T``, the ack pending ``1.0T ads``;
    ``gamead workers`` at 80 columns keeps the columns it shows for ordinary figures (HEARTBEAT among them), the
    worker's COMPLETED ``1.0T`` and FAILED ``123M``. Without the fix the 17-cell COMPLETED dropped UP and HEARTBEAT."""
    data = _huge(recorded)
    console = Console(width=160, record=True, color_system=None)
    console.print(view.snapshot_view(view.Snapshot(stats=data["stats"]), "http://recorded"))
    lines = console.export_text().splitlines()
    assert next(ln for ln in lines if ln.split()[:1] == ["P4"]).split()[1:4] == ["12M", "1.2M", "1.0T"]
    assert "1.0T ads" in next(ln for ln in lines if ln.split()[:2] == ["ack", "pending"])

    def shown(nodes: list[dict[str, Any]]) -> tuple[list[str], str]:
        table = view.nodes_table(nodes)
        out = Console(width=80, record=True, color_system=None)
        out.print(table)
        return table.columns_for(80), out.export_text()

    ordinary, _ = shown(recorded["workers"])
    columns, text = shown(data["workers"])
    assert "HEARTBEAT" in ordinary and columns == ordinary, (ordinary, columns)
    row = next(ln for ln in text.splitlines() if ln.startswith(data["workers"][1]["id"]))
    assert "1.0T" in row.split() and "123M" in row.split(), row
