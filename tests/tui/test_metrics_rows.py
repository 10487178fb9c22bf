"""tui43b: every row of the metrics panel on screen at the sizes the dashboard supports.

The top row is 8 lines tall: a bordered panel has 6 inside, the queue panel's header and 5 levels fill them, and
the metrics panel's 7th row, ``ack pending`` (what operators watch when workers stall), was visible only by
scrolling the panel, with nothing saying so. The metrics panel now has no bottom border (the top row keeps its
height, so no other panel loses a row), and where it still cannot show every row its title says ``· N more ↓``
as the nodes and DLQ panels' do. Without the fix: 3 of 3 sizes miss ``ack pending`` and the squeezed panel's
title says nothing (4 failed); with it, 4 passed.
"""

from __future__ import annotations

from typing import Any

import pytest

from gamead_cli.tui import view_queue
from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.widgets import MetricsPanel
from tests.tui.conftest import on_recording, screen_text, settled, until

LABELS = [m.label for m in view_queue.metric_rows(None)]

#: what the other panels show at each size: the queue's 5 levels and the tables' titles, as before the fix
OTHERS = {
    (80, 24): ("P5     177", "nodes · 2 workers · 1 stuck · 1 more ↓", "dead letters · 10 more ↓",
               "autoscaler 2 → 4"),
    (120, 40): ("P5     177", "nodes · 2 workers · 1 stuck ─", "dead letters · 5 more ↓", "22:40:12"),
    (200, 50): ("P5     177", "nodes · 2 workers · 1 stuck ─", "dead letters ─", "01m87vh1dcyhv24fg6ynrat2qm"),
}



@pytest.mark.parametrize("size", list(OTHERS), ids=["80x24", "120x40", "200x50"])
def test_every_metric_row_is_on_screen_and_no_other_panel_lost_a_row(recorded: dict[str, Any],
                                                                      size: tuple[int, int]) -> None:
    async def scenario(app: DashboardApp, pilot: Any) -> None:
        for focused in (False, True):  # the focused panel's border (accent) has no bottom either
            if focused:
                app.query_one(MetricsPanel).focus()
                await settled(pilot)
            text = screen_text(app)
            missing = [label for label in LABELS if f"│ {label} " not in text]
            assert not missing, f"focused={focused}: {missing} not on screen:\n{text}"
            assert "more ↓" not in str(app.query_one(MetricsPanel).border_title)
            for other in OTHERS[size]:
                assert other in text, other

    on_recording(recorded, size, scenario)


def test_a_metrics_panel_too_short_for_its_rows_says_how_many_lie_below(recorded: dict[str, Any]) -> None:
    async def scenario(app: DashboardApp, pilot: Any) -> None:
        app.query_one("#top-row").styles.height = 6  # 5 rows under the top border: 2 of 7 below
        title = await until(pilot, lambda: "more ↓" in screen_text(app).splitlines()[1]
                            and screen_text(app).splitlines()[1], what="the metrics title to say what is hidden")
        assert "throughput" in title and "· 2 more ↓" in title
        app.query_one("#top-row").styles.height = 8
        await until(pilot, lambda: "more ↓" not in screen_text(app).splitlines()[1], what="the title back")

    on_recording(recorded, (120, 40), scenario)
