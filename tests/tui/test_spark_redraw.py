"""newcomer45: a live ``gamead top`` started at 120x40 (tmux) drew no sparkline of queued, completed or a level's
depth for 45 s and more (``--once`` drew them), until the terminal was resized. ``SparkText.history`` computed the
new line and stored it before comparing it with the line drawn, so it never asked for a repaint: only a layout pass
(a figure changing length beside it, a resize) showed the history."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.app import App, ComposeResult

from gamead_cli.tui.widgets import SparkText
from tests.tui.conftest import screen_text, until


class _One(App[None]):
    def compose(self) -> ComposeResult:
        yield SparkText(id="spark")


def _drawn(app: App[None], mark: str, other_than: str = "") -> str:
    line = screen_text(app).splitlines()[0]
    return line if mark in line and line != other_than else ""


def test_a_sparkline_given_history_after_its_first_paint_is_drawn() -> None:
    async def scenario() -> tuple[str, str, str]:
        app = _One()
        async with app.run_test(size=(40, 3)) as pilot:
            spark: Any = await until(pilot, lambda: app.query("#spark").first(), what="the sparkline mounted")
            await until(pilot, lambda: spark.size.width == 40, what="the sparkline laid out")
            await pilot.pause()
            empty = screen_text(app).splitlines()[0]
            spark.history = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
            first = await until(pilot, lambda: _drawn(app, "█"), what="the history drawn")
            spark.history = [7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0]  # a new history: drawn again
            second = await until(pilot, lambda: _drawn(app, "█", other_than=first), what="the new history drawn")
            return empty, first, second

    empty, first, second = asyncio.run(scenario())
    assert not any(c in empty for c in "▁▂▃▄▅▆▇█"), repr(empty)  # no data yet: empty, not a full bar
    assert "█" in first and "▁" in first, repr(first)
    assert second.strip() and second != first, (first, second)
