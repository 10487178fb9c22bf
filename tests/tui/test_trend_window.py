"""words57: ``gamead top --once``'s metrics panel named one span with two figures, ``throughput · last 36 s`` over a
sparkline column ``LAST 38 s``: the title the rates' window (``rates.windowSeconds``), the column the count of
history points. While the history reaches no further than the rates' window (an API sampler younger than a minute)
both say the rates' window; past it the column says how far back the sparklines reach (5 min) under a title that
says the rates' minute. Without the fix the young cases failed (``LAST 38 s``, ``LAST 14 s``, ``LAST 62 s``)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from rich.console import Console

from gamead_cli.tui import view


def young(recorded: dict[str, Any], points: int, window: float) -> dict[str, Any]:
    """``recorded``'s stats as an API sampler of ``points`` one-second samples whose rates are over ``window`` s."""
    stats = copy.deepcopy(recorded["stats"])
    hist = stats["history"]
    for key, values in list(hist.items()):
        if isinstance(values, list):
            hist[key] = (values * points)[:points] if values else [0] * points
        elif isinstance(values, dict):
            hist[key] = {lv: ((v * points)[:points] if v else [0] * points) for lv, v in values.items()}
    hist["points"], hist["intervalSeconds"] = points, 1
    stats["rates"]["windowSeconds"] = window
    return stats


def metrics_figures(stats: dict[str, Any]) -> tuple[str, str]:
    """(the metrics panel title's throughput window, its sparkline column's label) as ``top --once`` prints them."""
    console = Console(width=120, record=True, color_system=None)
    console.print(view.snapshot_view(view.Snapshot(stats=stats), "http://recorded", width=120))
    text = console.export_text()
    title = re.search(r"^throughput(?: &| ·)(?: latency ·)? last (minute|\d+ s)", text, re.M)
    assert title, text
    after = text[title.end():]
    column = re.search(r"LAST (\d+ s|\d+ min)", after.splitlines()[1])
    assert column, after
    return title.group(1), column.group(1)


@pytest.mark.parametrize(("points", "window", "said"), [(38, 36.2, "36 s"), (14, 12.0, "12 s"), (62, 60.4, "1 min")])
def test_a_young_samplers_metrics_say_one_window(recorded: dict[str, Any], points: int, window: float,
                                                 said: str) -> None:
    title, column = metrics_figures(young(recorded, points, window))
    assert (title.replace("minute", "1 min"), column) == (said, said)


def test_a_full_history_says_its_own_reach_under_the_rates_minute(recorded: dict[str, Any]) -> None:
    assert metrics_figures(young(recorded, 300, 60.1)) == ("minute", "5 min")
