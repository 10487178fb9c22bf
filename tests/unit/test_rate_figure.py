"""polish47: one figure for a rate wherever gamead prints one. ``gamead top`` (live and ``--once``) said ``queued
0.1 ads/s`` where ``gamead scale status`` said ``0.100 ads/s`` of the same rate: top wrote one decimal, scale status
two significant digits — and a third when the rounding reached the next decade (0.0999 → ``0.100``). Both now write
:func:`gamead_core.rate_text.rate_figure`'s figure (top steps it to ``1.2k`` from 1,000 on, for its columns), and so
does ``gamead submit``'s summary.

probe47 F6: at odd inputs it wrote ``nan``, ``inf``, ``-0.5``, ``-0.0``, ``0.0000000000010`` (``1e-12``), a
330-character figure for ``5e-324`` and a 400-character one for ``1e300``; top's ``per_second`` raised on ``nan``
and ``inf``. Now each is a figure of at most 14 characters, and every caller's line or column keeps its width."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from gamead_cli.commands.scale import status_view
from gamead_cli.per_worker import per_worker_text
from gamead_cli.submit.views import summary_view
from gamead_cli.tui import view
from gamead_cli.tui.view_figures import per_second
from gamead_core.rate_text import rate_figure
from gamead_core.config import AutoscalerSettings
from gamead_core.scaling.reason import demand_text

NAN, INF = float("nan"), float("inf")
#: probe47 F6's inputs and what each is written as now
ODD = {NAN: "-", INF: "-", -INF: "-", -0.5: "0.0", -0.0: "0.0", 1e-12: "<0.001", 5e-324: "<0.001",
       0.00099: "<0.001", 1e300: ">999,999,999.9", 1e10: ">999,999,999.9", 999_999_999.9: "999,999,999.9"}


def test_two_significant_digits_below_one_even_when_rounded_up_a_decade() -> None:
    shown = {0.0: "0.0", 0.1: "0.10", 0.0999: "0.10", 0.09951: "0.10", 0.022: "0.022", 0.5: "0.50", 0.996: "1.0",
             0.0012: "0.0012", 1.7: "1.7", 1_062.94: "1,062.9"}
    assert {r: rate_figure(r) for r in shown} == shown


def _text(renderable: object) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(renderable)
    return " ".join(console.export_text().split())


@pytest.mark.parametrize("per_sec", [0.1, 0.0999, 0.022, 0.5, 1.7, 999.9])
def test_top_and_scale_status_say_one_rate_alike(per_sec: float) -> None:
    once = _text(view.snapshot_view(view.Snapshot(stats={"rates": {"submittedPerSec": per_sec}}), "http://x"))
    scale = _text(status_view({"backend": "local", "observed": {"pending": 0, "ackPending": 0,
                                                                 "submittedPerSec": per_sec, "windowSeconds": 30}}))
    top_said = re.search(r"queued (\S+) ads/s", once)
    scale_said = re.search(r"queued (\S+) ads/s", scale)
    assert top_said and scale_said, (once, scale)
    assert top_said.group(1) == scale_said.group(1) == rate_figure(per_sec), (once, scale)


def test_submit_summary_says_a_slow_rate_with_its_digits() -> None:
    """``submit --rate 0.25``: the summary said ``0.2 ads/s sent``, where the reason line says ``0.25``."""
    text = _text(summary_view({"sent": 3, "accepted": 1, "duplicates": 0, "rejected": 2,
                               "rejectedByCode": {"rate_limited": 2},
                               "elapsedSeconds": 12.0, "ratePerSecond": 0.25, "acceptedPerSecond": 0.0833}))
    assert "rate 0.25 ads/s sent, 0.083 ads/s accepted" in text, text


def test_odd_rates_are_written_as_a_short_figure() -> None:
    assert {r: rate_figure(r) for r in ODD} == ODD
    assert max(len(rate_figure(r)) for r in ODD) == 14


def test_tops_column_keeps_its_cells_at_odd_rates() -> None:
    """top's metric rows give a rate's figure 6 cells (tests/tui/test_figures_fit.py); ``nan`` raised."""
    shown = {r: per_second(r) for r in ODD}
    assert shown == {NAN: "-", INF: "-", -INF: "-", -0.5: "0.0", -0.0: "0.0", 1e-12: "<0.001", 5e-324: "<0.001",
                     0.00099: "<0.001", 1e300: ">999T", 1e10: "10.0G", 999_999_999.9: "999.9M"}, shown
    assert max(len(per_second(r)) for r in ODD) <= 6


@pytest.mark.parametrize("per_sec", list(ODD))
def test_every_caller_says_an_odd_rate_in_its_short_figure(per_sec: float) -> None:
    """top --once, scale status (observed, per worker), the autoscaler's reason line and submit's summary."""
    figure = ODD[per_sec]
    once = _text(view.snapshot_view(view.Snapshot(stats={"rates": {"submittedPerSec": per_sec}}), "http://x"))
    assert f"queued {per_second(per_sec)} " in once, once
    scale = _text(status_view({"backend": "local", "observed": {
        "pending": 0, "ackPending": 0, "submittedPerSec": per_sec, "windowSeconds": 30, "perWorkerPerSec": per_sec,
        "perWorkerBasis": {"bound": "measured", "completedPerSec": per_sec, "windowSeconds": 30}}}))
    assert f"queued {figure} ads/s" in scale and f"per worker {figure} ads/s (measured: {figure} ads/s" in scale, \
        scale
    assert per_worker_text(per_sec, {"bound": "initial"}) == f"{figure} ads/s (initial_per_worker_rate: none " \
        "measured yet)"
    reason = demand_text(AutoscalerSettings(), backlog=10, ack_pending=0, arrival=per_sec, late=None, rate=per_sec,
                         rate_note="", bound=None, raw=2)
    assert f"at {figure} ads/s per worker" in reason and len(reason) < 120, reason
    text = _text(summary_view({"sent": 3, "accepted": 3, "duplicates": 0, "rejected": 0,
                               "rejectedByCode": {}, "elapsedSeconds": 1.0,
                               "ratePerSecond": per_sec, "acceptedPerSecond": per_sec}))
    assert f"rate {figure} ads/s sent" in text, text
