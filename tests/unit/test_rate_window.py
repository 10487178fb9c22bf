"""attack25d #1: rates labelled "last minute" (``rates.windowSeconds: 60``) divided by the span of samples the
API's sampler had: 100 ads sent 11 s after an API restart showed as 10 ads/s "last minute" (truth over a
minute: 1.67/s). The rates now say the seconds they are over, and ``gamead top`` labels them so."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from gamead_cli.tui.view import Snapshot, snapshot_view
from gamead_cli.tui.view_queue import metrics_title
from gamead_core.config import GameadSettings
from gamead_core.stats.reading import QueueReading
from gamead_core.stats.sampler import QueueSampler

T0 = 1_800_000_000.0


def sampler_with(seconds: int, submitted_in_window: int) -> QueueSampler:
    """A sampler fed one reading a second for ``seconds`` seconds (after its start, as after an API restart),
    the work stream growing by ``submitted_in_window`` ads over the last 11 of them."""
    now = [T0]
    sampler = QueueSampler(SimpleNamespace(nc=None, js=None), GameadSettings(), node_id="api-1",
                           clock=lambda: now[0], sections=False)
    for i in range(seconds + 1):
        now[0] = T0 + i
        grown = max(0, i - (seconds - 11)) * submitted_in_window // 11
        sampler._append(sampler._derive(QueueReading(t=now[0], connected=True, last_seq=1000 + grown)))
    return sampler


def top_once(stats: dict) -> str:
    out = io.StringIO()
    Console(file=out, width=160, no_color=True).print(snapshot_view(Snapshot(stats=stats), "http://api"))
    return out.getvalue()


def test_a_fresh_sampler_reports_the_seconds_it_has_not_a_minute() -> None:
    stats = sampler_with(11, 99).stats()
    assert stats["rates"]["windowSeconds"] == 11.0
    assert stats["rates"]["submittedPerSec"] == 9.0  # 99 ads over the 11 s it has: labelled as such
    text = top_once(stats)
    assert "throughput · last 11 s · latency · last minute" in text
    assert "throughput & latency · last minute" not in text


def test_a_sampler_with_a_minute_of_history_says_last_minute() -> None:
    stats = sampler_with(90, 99).stats()
    assert stats["rates"]["windowSeconds"] == 60.0
    assert stats["rates"]["submittedPerSec"] == 1.65  # 99 ads in the last minute
    assert "throughput & latency · last minute (ack pending: now)" in top_once(stats)


def test_a_steady_sampler_with_jittered_ticks_keeps_saying_last_minute() -> None:
    """Review stats2 #1: sample times jitter by milliseconds, so the sample 60 s back fell just outside the window
    every other tick and ``windowSeconds`` flipped 60 → 59: the title of ``gamead top`` flickered between "last
    minute" and "last 59 s". The rates are over the samples nearest a minute apart: ``windowSeconds`` is that span
    (60 s to within the jitter), what they are divided by (attack29a F3), and the title says "last minute"."""
    now = [T0]
    sampler = QueueSampler(SimpleNamespace(nc=None, js=None), GameadSettings(), node_id="api-1",
                           clock=lambda: now[0], sections=False)
    titles, windows = set(), set()
    for i in range(150):
        now[0] = T0 + i + 0.005 * (i * 37 % 11)  # 0–50 ms late, varying tick to tick
        sampler._append(sampler._derive(QueueReading(t=now[0], connected=True, last_seq=1000 + 2 * i)))
        if i >= 62:
            stats = sampler.stats()
            windows.add(stats["rates"]["windowSeconds"])
            titles.add(metrics_title(stats))
            # 2 ads a tick: the increase between the two samples, 60 ticks apart, is 120
            assert abs(stats["rates"]["submittedPerSec"] * stats["rates"]["windowSeconds"] - 120) < 0.1
    assert all(abs(w - 60) < 0.1 for w in windows)
    assert titles == {"throughput & latency · last minute"}

