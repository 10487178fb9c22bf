"""units46: every figure of the live dashboard's metrics panel says what it counts, as ``gamead top --once`` does.

Before, the live panel printed ``queued 15.1/s``, ``retried 0.0/s`` and ``ack pending 2`` (a rate of what, a count
of what) while ``--once`` printed ``15.1 ads/s``, ``0.0 attempts/s`` and ``2 ads``: each view had its own wording
(``--once``'s in ``view._with_unit``). Both now print :attr:`MetricRow.text`'s words, the live panel in fixed
columns (:func:`view_queue.metric_line`). Without the fix 4 failed (``queued 6.2/s`` at each size); with it 4 passed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from rich.console import Console

from gamead_cli.tui import view, view_queue
from gamead_cli.tui.app import DashboardApp
from tests.tui.conftest import on_recording, screen_text

#: a metric row as shown: its label, a figure, then what it counts
SAID = {"queued": "ads/s", "completed": "ads/s", "retried": "attempts/s", "dead": "ads/s", "ack pending": "ads"}


def said(text: str) -> dict[str, str]:
    """Each row of :data:`SAID` found in ``text``: ``{"queued": "7.5 ads/s", …}`` (the first such line)."""
    found = {}
    for label in SAID:
        m = re.search(rf"(?:^|│ ){label} +(\S+(?: [a-z/]+)?)", text, re.M)
        if m:
            found[label] = m.group(1)
    return found


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 50)], ids=["80x24", "120x40", "200x50"])
def test_the_live_metrics_panel_says_what_each_figure_counts(recorded: dict[str, Any], size: tuple[int, int]) -> None:
    async def scenario(app: DashboardApp, pilot: Any) -> None:
        text = screen_text(app)
        rows = said(text)
        assert set(rows) == set(SAID), text
        for label, unit in SAID.items():
            figure, _, words = rows[label].partition(" ")
            assert re.fullmatch(r"[\d.,]+[kMGT]?|-", figure) and words == unit, (label, rows[label], text)
        assert not re.search(r"\d/s", text), text  # no bare rate left anywhere on screen

    on_recording(recorded, size, scenario)


def test_once_and_live_say_the_same_words(recorded: dict[str, Any]) -> None:
    """``gamead top --once`` prints each row's value as the live panel does: figure and unit."""
    console = Console(width=160, record=True, color_system=None)
    console.print(view.snapshot_view(view.Snapshot(stats=recorded["stats"]), "http://recorded"))
    once = said(console.export_text())
    rows = {m.label: m for m in view_queue.metric_rows(recorded["stats"])}
    live = {label: " ".join(view_queue.metric_line(rows[label]).removeprefix(label).split()) for label in SAID}
    assert once == live and all(once[label].endswith(" " + unit) for label, unit in SAID.items()), (once, live)
    assert rows["wait p95"].text.endswith("ms") and view_queue.metric_line(rows["wait p95"]).endswith("ms")
