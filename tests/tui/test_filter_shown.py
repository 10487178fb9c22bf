"""A filter in effect is named on screen at every size: at 80x24 the panels have no bottom border (top.tcss ``-short``),
where the filter was shown at 200x50, so ``/wor`` + enter left the nodes filtered with nothing saying so (regress41b).
It now follows the panel's title there, whole or not at all (regress41 F7's rule). Read off the screen."""

from __future__ import annotations

import asyncio
from typing import Any

from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.view_tables import border_labels
from gamead_cli.tui.widgets_tables import DlqTable, NodesTable
from tests.tui.conftest import burst, screen_text, settled, until


def filtered_screen(recorded: dict[str, Any], size: tuple[int, int], *keys: str) -> tuple[list[str], int]:
    """The dashboard's lines at ``size`` after ``keys``, and the nodes shown."""
    async def main() -> tuple[list[str], int]:
        app = DashboardApp(RecordedSource(recorded), refresh=3600)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.stats is not None and app.query_one(DlqTable).row_count > 0,
                        what="the first refresh")
            await burst(pilot, *keys)
            nodes = app.query_one(NodesTable)
            await until(pilot, lambda: app.focused is nodes and nodes.filter_text, what="the filter kept")
            await settled(pilot)
            return screen_text(app).splitlines(), nodes.row_count

    return asyncio.run(main())


def test_a_filter_in_effect_is_shown_at_80x24(recorded: dict[str, Any]) -> None:
    """``/wor`` + enter at 80x24: the nodes panel's top border names the filter (``nodes · … · filter: wor``).
    Without the fix no line of the screen said ``filter`` (1 of 1 failed); with it, passes."""
    lines, shown = filtered_screen(recorded, (80, 24), "/", "w", "o", "r", "enter")
    title = next(line for line in lines if "nodes ·" in line)  # ─nodes · 2 workers · 1 stuck · filter: wor───
    assert "filter: wor" in title, title
    assert sum("filter: wor" in line for line in lines) == 1 and shown > 0


def test_a_filter_in_effect_is_still_in_the_bottom_border_at_200x50(recorded: dict[str, Any]) -> None:
    """At 200x50 the panel keeps its bottom border and the filter stays in it, not in the title."""
    lines, _ = filtered_screen(recorded, (200, 50), "/", "w", "o", "r", "enter")
    assert [line for line in lines if "filter: wor" in line and "╰" in line]


def test_a_filter_is_named_whole_or_not_at_all() -> None:
    """The pure rule: after the title without a bottom border, the title's later fields go first; too long, the
    filter is ``filtered``; no room for that either, the title alone. Never half a filter."""
    title = "nodes · 3 workers · 1 late"
    assert border_labels(title, "wor", 80, bottom=False) == ("nodes · 3 workers · 1 late · filter: wor", "")
    assert border_labels(title, "wor", 30, bottom=False) == ("nodes · 1 late · filter: wor", "")
    assert border_labels(title, "x" * 90, 74, bottom=False) == ("nodes · 3 workers · 1 late · filtered", "")
    assert border_labels(title, "wor", 10, bottom=False) == (title, "")
    assert border_labels(title, "wor", 74, bottom=True) == (title, "filter: wor")
    assert border_labels(title, "x" * 90, 74, bottom=True) == (title, "filtered")
    assert border_labels(title, "", 74, bottom=False) == (title, "")
