"""polish47: one figure for a rate wherever gamead prints one. ``gamead top`` (live and ``--once``) said ``queued
0.1 ads/s`` where ``gamead scale status`` said ``0.100 ads/s`` of the same rate: top wrote one decimal, scale status
two significant digits — and a third when the rounding reached the next decade (0.0999 → ``0.100``). Both now write
:func:`gamead_core.rate_text.rate_figure`'s figure (top steps it to ``1.2k`` from 1,000 on, for its columns), and so
does ``gamead submit``'s summary."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from gamead_cli.commands.scale import status_view
from gamead_cli.submit.views import summary_view
from gamead_cli.tui import view
from gamead_core.rate_text import rate_figure


def test_two_significant_digits_below_one_even_when_rounded_up_a_decade() -> None:
    shown = {0.0: "0.0", 0.1: "0.10", 0.0999: "0.10", 0.09951: "0.10", 0.022: "0.022", 0.5: "0.50", 0.996: "1.0",
             0.00012: "0.00012", 1.7: "1.7", 1_062.94: "1,062.9"}
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
    text = _text(summary_view({"sent": 3, "accepted": 1, "duplicates": 0, "rejected": {"rate_limited": 2},
                               "elapsedSeconds": 12.0, "ratePerSecond": 0.25, "acceptedPerSecond": 0.0833}))
    assert "rate 0.25 ads/s sent, 0.083 ads/s accepted" in text, text
