"""What ``gamead top`` shows of what was not measured (leftover (b) of sig36): never a made-up figure. Pure.

* A node's host clock before its first sample of nats-server's: its first heartbeat, and ``/v1/stats`` of an API
  that has not reached NATS, carry ``clockOffsetSeconds``/``clockErrorSeconds`` null
  (gamead_core.clock_offset.measured). The details of such a node said ``clock offset (+: host behind)  -``, a dash
  as for a field that has no value; they now say ``not measured yet``.
* The points of ``/v1/stats`` ``history`` that were not measured (null: a rate's first point, a p95 while NATS was
  away) were drawn as zeros: the lowest bar, and under the widgets' relative scale one made-up 0 squeezed every real
  point to the top (the recorded submit rate of 5.9-6.4/s drew as a flat ``▇▇▇▇▇``). Now a blank cell."""

from __future__ import annotations

import io
import re

from rich.console import Console

from gamead_cli.tui.view_figures import series, spark
from gamead_cli.tui.view_tables import details_view


def test_a_clock_offset_not_sampled_yet_reads_not_measured_yet_and_a_measured_one_its_figure() -> None:
    console = Console(width=200, file=io.StringIO(), color_system=None)
    console.print(details_view({"id": "api-1", "clockOffsetSeconds": None, "clockErrorSeconds": None}))
    console.print(details_view({"id": "w1", "clockOffsetSeconds": 300.25, "clockErrorSeconds": 0.002}))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert re.search(r"clock offset \(\+: host behind\)\s+not measured yet", out), out
    assert re.search(r"clock offset ±\s+not measured yet", out), out
    assert re.search(r"clock offset \(\+: host behind\)\s+300\.2 s", out), out


def test_history_points_not_measured_are_blank_cells_never_zeros() -> None:
    """Figures: ``[null, 30, null]`` ms of p95 wait drew ``▁█▁`` (0 ms either side); ``[null, null, 100, 101, 100]``
    on the relative scale drew ``▁▁▇█▇`` (the 100s looked near the top)."""
    assert spark(series([None, 30, None]), 3) == " █ "
    assert spark(series([None, None, 100, 101, 100]), 5, relative=True) == "  ▁█▁"
    assert spark(series([None, None, None]), 3) == "   "  # nothing measured: nothing drawn
    assert spark(series([None, 4, 4, 4, 8, None, None, None]), 4) == "▅▅█ "  # a bucket: the max of what it measured
    assert spark(series([0, 0, 5]), 3) == "▁▁█"  # a measured zero is still the lowest bar
