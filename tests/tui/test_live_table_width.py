"""Every live table of ``gamead top`` (nodes, dead letters, a level's ads) shows each label and figure whole at
80-100 columns, dropping whole columns in a fixed order as the ``--once`` tables do (regress40 F4).

Figure (before the fix): Textual's DataTable drew every column at its natural width and the panel cut the row at its
edge. With heartbeat ages 0.9 s and 1.3 s (regress40 F4's) and a long last error, the nodes header ended in
``HEARTBE`` at 80x24, ``HEARTB`` at 80x40 (its ages cut to ``0.9s``, ``1.3s``: "ago" gone), ``LAST E`` at 90x24;
at 100x26 the DLQ table's MESSAGE (40 cells) pushed ``DEAD AT (UTC)`` out of the panel.
"""

from __future__ import annotations

import asyncio
import copy
import re
from typing import Any

import pytest

from gamead_cli.tui import view_queue
from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.screens import AdsTable, LevelScreen
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.widgets_tables import DlqTable, FilterTable, NodesTable
from tests.tui.conftest import press, settled, until

SIZES = [(80, 24), (80, 40), (90, 24), (100, 26)]


def _payload(recorded: dict[str, Any]) -> dict[str, Any]:
    """The recording with heartbeat ages of 0.9 s and 1.3 s (regress40 F4's) and a long last error."""
    data = copy.deepcopy(recorded)
    ages = iter((0.9, 1.3, 0.9))
    for node in data["workers"]:
        node["heartbeatAgeSeconds"] = next(ages)
    data["workers"][1]["lastError"] = "RetryableError: injected retryable fault (worker.faults) on a long title"
    return data


def _lines(table: FilterTable) -> list[str]:
    """The table's lines as the terminal shows them: the header then each row, cut at the table's own width."""
    width = table.scrollable_content_region.width
    strips = [table.render_line(y) for y in range(min(table.size.height, table.row_count + 1))]
    return [strip.text[:width] for strip in strips]


def _labels(table: FilterTable) -> list[str]:
    return [str(c.label) for c in table.ordered_columns]


def _assert_whole(table: FilterTable, all_labels: tuple[str, ...]) -> str:
    lines = _lines(table)
    header = lines[0]
    labels = [label for label in _labels(table) if label.strip() and label != "✓"]
    assert labels, header
    words = re.split(r"\s{2,}", header.strip())
    assert [w for w in words if w not in ("✓",)] == labels, (header, labels)  # each shown label whole, in order
    assert set(labels) <= set(all_labels), labels
    assert "ID" in labels, labels  # the ids never go
    return "\n".join(lines)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_live_tables_drop_whole_columns_never_cut_a_label_or_figure(recorded: dict[str, Any],
                                                                     size: tuple[int, int]) -> None:
    data = _payload(recorded)

    async def main() -> None:
        app = DashboardApp(RecordedSource(data), refresh=3600)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.stats is not None and app.query_one(DlqTable).row_count > 0
                        and app.query_one(NodesTable).row_count == 3, what="the recording on screen")
            await settled(pilot)
            nodes = app.query_one(NodesTable)
            text = _assert_whole(nodes, ("ID", "ROLE", "STATE", "UP", "IN-FL", "COMPLETED", "FAILED", "PROC P95",
                                         "HEARTBEAT", "LAST ERROR"))
            assert "HEARTBEAT" in _labels(nodes), text  # stuck and late nodes are told by it
            assert "0.9s ago" in text and "1.3s ago" in text, text
            dlq = app.query_one(DlqTable)
            text = _assert_whole(dlq, ("ID", "P", "ATT", "ERROR", "MESSAGE", "DEAD AT (UTC)", "DEAD AT"))
            assert "01m87vjgr0jpf99az52ef3wdqx" in text, text  # a whole id, to copy
            if any(label.startswith("DEAD AT") for label in _labels(dlq)):
                assert "11-24 22:42:09" in text, text

    asyncio.run(main())


#: two ads of level 2 with long titles, in the recording's time (its stats were generated at 22:42:13.9897Z)
ADS = [
    {"id": "01m87vaaaaaaaaaaaaaaaaaaa1", "status": "queued", "priority": 2, "attempts": 1,
     "submittedAt": "2026-11-24T22:38:13.989Z",
     "ad": {"title": "Dragon Kingdom: build your kingdom, train your dragons and conquer"}},
    {"id": "01m87vaaaaaaaaaaaaaaaaaaa2", "status": "processing", "priority": 2, "attempts": 2,
     "workerId": "worker-b", "submittedAt": "2026-11-24T22:40:13.989Z",
     "ad": {"title": "Space Miners: dig the asteroid belt with your friends tonight"}, "analysis": None},
]


def test_a_levels_ads_table_keeps_whole_labels_and_ages_at_80x24(recorded: dict[str, Any]) -> None:
    """The drill-down of a level (``:level 2``) is a live table too. Figure (before the fix): at 80x24 its
    columns at their natural widths (ids 26, titles 40) ran past the dialog: its header ended in ``TITL``."""
    async def main() -> None:
        app = DashboardApp(RecordedSource({**recorded, "ads": ADS}), refresh=3600)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.stats is not None, what="the first refresh")
            await press(pilot, "colon", *"level 2", "enter")
            screen = await until(pilot, lambda: isinstance(app.screen, LevelScreen) and app.screen.loaded
                                 and app.screen, what="level 2's ads")
            await settled(pilot)
            table = screen.query_one(AdsTable)
            text = _assert_whole(table, view_queue.LEVEL_AD_COLUMNS)
            assert {"STATE", "AGE"} <= set(_labels(table)), text
            assert "4m00s" in text and "2m00s" in text, text

    asyncio.run(main())
