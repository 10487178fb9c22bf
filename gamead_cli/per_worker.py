"""``gamead scale status``'s ``per worker`` row: the per-worker rate and the figures that give it, for people. Pure.

Every figure printed beside the rate gives it, or says what it is (attack44c F6: ``13,118 ads/s (latency-bound:
concurrency 4 / p50 2,667 ms)``, where 4 / 2.667 s is 1.5 ads/s: the rate was the mean of two workers' own rates,
26,235/s and 1.5/s, and the concurrency and p50 means of their own; a mean of ratios is no ratio of means). One
worker: its own figures. Several: the rate is said to be their mean, with the slowest and the fastest worker's own
rate and own figures (``observed.perWorkerBasis.slowest``/``fastest``), or, all alike, one worker's figures.
"""

from __future__ import annotations

import math
from typing import Any

from gamead_core.rate_window import window_words
from gamead_core.rate_text import CEILING
from gamead_core.scaling.reason import rate_figure


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _per_sec(value: Any) -> str:
    return f"{value:,.0f} ads/s" if 100 <= value <= CEILING else f"{rate_figure(value)} ads/s"  # inf: rate_figure's


def _cpu(b: dict[str, Any]) -> str:
    """``1.18 ms CPU per ad``: 3 significant digits (``0.0212 ms``: 2 decimals said ``0.02``, 1 / which is 50,000/s
    for a worker doing 47,170/s)."""
    ms = b.get("cpuPerAdMs")
    if ms is None:
        return "CPU per ad"
    return f"{ms:,.0f} ms CPU per ad" if ms >= 100 else f"{ms:#.3g} ms CPU per ad"


def _latency(b: dict[str, Any]) -> str:
    if b.get("concurrency") is None or b.get("p50Ms") is None:
        return "concurrency / p50"
    return f"concurrency {b['concurrency']:g} / p50 {_ms(b['p50Ms'])} ms"


def own_words(b: dict[str, Any]) -> str:
    """One worker's bound and the figures that give its rate: ``CPU-bound: 1.18 ms CPU per ad; concurrency / p50
    alone: 8,000 ads/s`` or ``latency-bound: concurrency 4 / p50 120 ms; 1.18 ms CPU per ad`` (its CPU per ad whenever
    measured). Pure."""
    if b.get("bound") == "cpu":
        little = b.get("latencyBoundPerSec")
        return f"CPU-bound: {_cpu(b)}" + (f"; concurrency / p50 alone: {little:,.0f} ads/s" if little else "")
    return f"latency-bound: {_latency(b)}" + (f"; {_cpu(b)}" if b.get("cpuPerAdMs") is not None else "")


def _alike(a: Any, b: Any) -> bool:
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=5e-3)


def _of_several(n: int, b: dict[str, Any]) -> str:
    """The figures of a mean over ``n`` > 1 workers (``cpu``, ``latency``, ``mixed``)."""
    slow, fast = b.get("slowest"), b.get("fastest")
    cpu_bound = b.get("cpuBoundWorkers")
    bounds = "" if b.get("bound") != "mixed" else f", {cpu_bound} of them CPU-bound, the rest latency-bound"
    if not isinstance(slow, dict) or not isinstance(fast, dict):  # an older leader: the means, said as means
        means = f"means: {_cpu(b)}, {_latency(b)}" if b.get("bound") != "cpu" else f"mean {_cpu(b)}"
        return f"mean of {n} workers' own rates{bounds}; {means}, which need not give it"
    if _alike(slow.get("perSec"), fast.get("perSec")):
        return f"each of {n} workers, e.g. {own_words(slow)}"
    ends = "and" if n == 2 else "to"
    return (f"mean of {n} workers' own rates{bounds}: {'' if n == 2 else 'from '}{_per_sec(slow['perSec'])} "
            f"({own_words(slow)}) {ends} {_per_sec(fast['perSec'])} ({own_words(fast)})")


def per_worker_text(rate: float | None, basis: dict[str, Any] | None, window: Any = None) -> str:
    """``observed.perWorkerPerSec`` and which bound gave it (``observed.perWorkerBasis``), for people. Pure.

    ``847.5 ads/s (CPU-bound: 1.18 ms CPU per ad; concurrency / p50 alone: 8,000 ads/s)``,
    ``80.0 ads/s (latency-bound: concurrency 4 / p50 50 ms; 1.18 ms CPU per ad)``,
    ``13,118.2 ads/s (mean of 2 workers' own rates: 1.5 ads/s (latency-bound: …) and 26,235 ads/s (latency-bound: …))``,
    ``60.0 ads/s (measured: 120.0 ads/s completed (last minute: ``window``, the rates' seconds) by 2 busy
    worker(s); mean 1.18 ms CPU per ad)``; without a rate, ``unknown`` and why (newcomer58: a bare ``unknown``
    under an idle stack's override, which uses no kept rate, read as a fault). The CPU per ad is shown whenever a
    worker measured it, whichever bound gave the rate. A rate the autoscaler used though none was measured now says so:
    ``(last measured 42s ago; CPU-bound: …)`` or ``(initial_per_worker_rate: none measured yet)``, as its reason
    line (attack32a F1)."""
    if rate is None:
        return "unknown: no worker measured it over the last minute (too few ads analysed)"
    b = basis or {}
    if b.get("bound") == "initial":
        return f"{rate_figure(rate)} ads/s (initial_per_worker_rate: none measured yet)"
    if b.get("lastMeasuredSecondsAgo") is not None:
        kept = per_worker_text(rate, {k: v for k, v in b.items() if k != "lastMeasuredSecondsAgo"}, window)
        head, _, rest = kept.partition(" (")
        return f"{head} (last measured {b['lastMeasuredSecondsAgo']:.0f}s ago" + (f"; {rest}" if rest else ")")
    text = f"{rate_figure(rate)} ads/s"
    bound = b.get("bound")
    n = b.get("workers") if isinstance(b.get("workers"), int) else 1
    if bound == "measured":
        done = b.get("completedPerSec")
        over = window_words(b.get("windowSeconds", window))  # a kept rate's own window (review44 F3)
        also = "" if b.get("cpuPerAdMs") is None else f"; {'mean ' if n > 1 else ''}{_cpu(b)}"  # not the cause
        return text + (f" (measured: {rate_figure(done)} ads/s completed ({over}) by {n} busy worker(s){also})"
                       if done is not None else f" (measured{also})")
    if bound not in ("cpu", "latency", "mixed"):
        return text
    if n > 1:
        return f"{text} ({_of_several(n, b)})"
    return f"{text} ({own_words(b.get('slowest') if isinstance(b.get('slowest'), dict) else b)})"


__all__ = ["own_words", "per_worker_text"]
