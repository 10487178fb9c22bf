"""Pure arithmetic behind the rates and percentiles of one reading of the queue. No I/O, no clock.

Used by :class:`~gamead_core.stats.sampler.QueueSampler` — the one place the figures are computed, which
``/v1/stats``, ``gamead top`` and the autoscaler all read — and tested on its own
(``tests/unit/test_registry_rules.py``, ``tests/unit/test_autoscaler_parts.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from gamead_core.rate_window import RATE_WINDOW_SECONDS
from gamead_core.registry import Percentiles

RATE_WINDOW = float(RATE_WINDOW_SECONDS)  #: seconds behind "per second over the last minute"
#: rate name → the sample total it is the rate of: ads submitted, ads completed, failed attempts that will be
#: retried (attempts, not ads: one ad may fail several), ads dead-lettered (``failedPerSec`` before: the two summed)
COUNTERS = {"submittedPerSec": "submitted", "completedPerSec": "completed", "retriedPerSec": "retried",
            "deadLetteredPerSec": "dead"}
FORGET_AFTER = 600.0  #: a vanished node's counters are remembered this long (it may come back)


def aging_horizon(level: int, aging_step: float) -> float:
    """Seconds after which a pending ad of ``level`` has aged to the top: ``(level − 1) × aging_step``
    (one step for level 1). Past it the level is late and the dashboard colours it."""
    return max(level - 1, 1) * aging_step


def merge_percentiles(parts: Iterable[Percentiles]) -> Percentiles:
    """Approximate percentiles of several workers' samples pooled, from each one's p50/p95/p99 and count.

    Each worker's distribution is stood in for by point masses at its p50 (50 %), p95 (45 %) and p99 (5 %):
    exact for one worker, a fair estimate for several (exact merging would need the raw samples).
    """
    points: list[tuple[float, float]] = []
    total = 0
    for p in parts:
        if not p.count or p.p50 is None or p.p95 is None or p.p99 is None:
            continue
        total += p.count
        points += [(p.p50, 0.50 * p.count), (p.p95, 0.45 * p.count), (p.p99, 0.05 * p.count)]
    if not total:
        return Percentiles()
    points.sort()

    def quantile(q: float) -> float:
        need, acc = q * total, 0.0
        for value, weight in points:
            acc += weight
            if acc >= need - 1e-9:
                return value
        return points[-1][0]

    return Percentiles(p50=quantile(0.50), p95=quantile(0.95), p99=quantile(0.99), count=total)


class MonotonicTotal:
    """One ever-growing total from counters of many sources that may restart from zero or vanish.

    ``update({key: (counter, fresh)}, now)`` → the total: a known key adds its increase (a counter that went
    down restarted, so its whole value is new); an unknown key adds its value only when ``fresh`` (it started
    after we began counting), else 0 — its past belongs to before our window. Keys unseen for
    ``FORGET_AFTER`` seconds are dropped.
    """

    def __init__(self) -> None:
        self.total = 0
        self._last: dict[str, tuple[int, float]] = {}

    def update(self, counters: Mapping[str, tuple[int, bool]], now: float) -> int:
        for key, (value, fresh) in counters.items():
            prev = self._last.get(key)
            if prev is None:
                self.total += value if fresh else 0
            elif value >= prev[0]:
                self.total += value - prev[0]
            else:
                self.total += value
            self._last[key] = (value, now)
        for key in [k for k, (_, seen) in self._last.items() if now - seen > FORGET_AFTER]:
            del self._last[key]
        return self.total


def window_ends(times: Sequence[float], now: float, window: float = RATE_WINDOW,
                tolerance: float = 0.0) -> tuple[int, int] | None:
    """Indices into ``times`` (sample times, epoch s, oldest first) of the two samples a rate over the last
    ``window`` seconds before ``now`` is taken between: the newest, and the one nearest ``now − window`` that is
    no older than ``now − window − tolerance`` (``tolerance``: one sample interval and its jitter, so the sample
    just before the window's start is taken when it is the nearer). The span between the two is the window to
    within half a sample interval once the samples reach back that far, and less while they do not (a sampler
    started 11 s ago: 11 s). None without two distinct times in reach."""
    start_at = now - window
    reach = [i for i, t in enumerate(times) if t >= start_at - tolerance]
    if len(reach) < 2:
        return None
    first, last = min(reach, key=lambda i: abs(times[i] - start_at)), reach[-1]
    return (first, last) if times[last] > times[first] else None


def window_rate(points: Sequence[tuple[float, int | None]], now: float, window: float = RATE_WINDOW,
                tolerance: float = 0.0) -> float | None:
    """Per-second increase of a total over the last ``window`` seconds; ``points`` are (t, total), oldest
    first. Between the two known points :func:`window_ends` picks, divided by the seconds between them
    (:func:`window_span`), so ``rate × span`` is the increase. None without two known points in reach."""
    known = [(t, v) for t, v in points if v is not None]
    ends = window_ends([t for t, _ in known], now, window, tolerance)
    if ends is None:
        return None
    (t0, v0), (t1, v1) = known[ends[0]], known[ends[1]]
    return max(0, v1 - v0) / (t1 - t0)  # type: ignore[operator]  # unrounded: rate × span is the increase


def window_span(points: Sequence[tuple[float, int | None]], now: float, window: float = RATE_WINDOW,
                tolerance: float = 0.0) -> float | None:
    """Seconds :func:`window_rate` of the same ``points`` divides by (the samples it takes are that far apart:
    ``window`` ± half a sample interval, less for a younger sampler); None when it gives no rate."""
    known = [t for t, v in points if v is not None]
    ends = window_ends(known, now, window, tolerance)
    return None if ends is None else known[ends[1]] - known[ends[0]]


def counter_rates(samples: Sequence[tuple[float, Mapping[str, int | None]]], now: float,
                  window: float = RATE_WINDOW, tolerance: float = 0.0) -> tuple[dict[str, float | None], float | None]:
    """The per-second rates of several totals over the last ``window`` seconds, all over one span.

    ``samples``: (t, {name: total or None}), oldest first. Returns ({name: rate or None}, span seconds). The
    rates are taken between the two samples :func:`window_ends` picks among those where every total is known,
    so each ``rate × span`` is that total's increase between the same two instants (the stream's and the
    workers' counters alike). The rates are not rounded: rounded to 3 decimals, 2 ads over 60 s read 0.033 and
    ``rate × span`` 1.98, an ``int()`` of 1 (attack32b F2). Where no two such samples are in reach (one source
    unreadable for a minute), each total's rate is over its own known samples and the span is the longest of theirs."""
    names = list(samples[-1][1]) if samples else []
    whole = [(t, v) for t, v in samples if all(v.get(n) is not None for n in names)]
    ends = window_ends([t for t, _ in whole], now, window, tolerance)
    if ends is not None:
        (t0, v0), (t1, v1) = whole[ends[0]], whole[ends[1]]
        return {n: max(0, v1[n] - v0[n]) / (t1 - t0) for n in names}, t1 - t0  # type: ignore[operator]
    rates, spans = {}, []
    for n in names:
        points = [(t, v.get(n)) for t, v in samples]
        rates[n] = window_rate(points, now, window, tolerance)
        spans.append(window_span(points, now, window, tolerance))
    return rates, max((x for x in spans if x is not None), default=None)


def step_rates(points: Sequence[tuple[float, int | None]]) -> list[float | None]:
    """Per-second rate between consecutive points (None where either end is unknown); first point None."""
    out: list[float | None] = [None] if points else []
    for (t0, v0), (t1, v1) in zip(points, points[1:]):
        out.append(None if v0 is None or v1 is None or t1 <= t0 else round(max(0, v1 - v0) / (t1 - t0), 3))
    return out


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    """What the per-worker rate uses of one worker's heartbeat."""

    concurrency: int
    p50_ms: float | None
    started_at: float  #: epoch seconds, nats-server's clock (``registry.server_started``: not its host's startedAt)
    draining: bool = False
    quiet: bool = False  #: told to take no new ad (gamead_core.worker.quiet): no capacity, left out like draining
    cpu_per_ad_ms: float | None = None  #: the worker's process CPU per settled ad (``cpuPerAdMs``), ms
    samples: int | None = None  #: processing times behind ``p50_ms`` (its ``count``; None: not said, an older entry)


#: Which rule gave a per-worker rate: the completions of busy workers, one core's worth of CPU per ad,
#: Little's law (concurrency ÷ p50 processing time), or the last two for different workers.
Bound = Literal["measured", "cpu", "latency", "mixed"]
#: Processing times a worker's p50 must stand on before Little's law is taken from it, as many as its CPU per ad
#: (``gamead_core.worker.counters.CPU_MIN_ADS``): 3 sub-millisecond analyses gave 17,174.7 ads/s per worker,
#: ~20× what one worker process can do, kept by the autoscaler as "last measured" (attack32a F1).
MIN_LATENCY_SAMPLES = 20


def _positive(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) and x > 0 else None


@dataclass(frozen=True, slots=True)
class Capacity:
    """What one worker can complete, ads/s, and which bound gave it (``cpu`` or ``latency``)."""

    rate: float
    bound: Literal["cpu", "latency"]
    little: float  #: the latency bound alone (Little's law), ads/s


def worker_capacity(w: WorkerLoad) -> Capacity | None:
    """Ads per second one worker could complete given work: ``min(concurrency / p50, 1 / cpu_per_ad)``.

    * **Latency bound** — Little's law (L = λW, J. D. C. Little, *Operations Research* 9(3), 1961): with
      ``concurrency`` ads in service, each ``p50_ms`` long, at most ``concurrency × 1000 / p50_ms`` ads/s.
      It counts only the time an analysis takes, not the CPU the worker spends around it (pull, ack,
      record writes, heartbeats), so for a fast analysis it overstates the worker many times.
    * **CPU bound** — one worker process runs one event loop on one core at most (CPython's GIL), so it
      cannot complete more than ``1000 / cpu_per_ad_ms`` ads/s, whatever its concurrency (the Utilisation
      Law U = X·S of operational analysis, Denning & Buzen 1978, with U ≤ 1 core).

    None when the latency bound is unknown (fewer than :data:`MIN_LATENCY_SAMPLES` processing samples in the
    last minute, concurrency 0): the CPU bound alone would overstate a worker whose analyses wait on I/O. An unknown CPU figure (an older
    worker, or too few ads yet) leaves the latency bound alone, the rule before the CPU bound existed.
    """
    p50 = _positive(w.p50_ms)
    if w.concurrency <= 0 or p50 is None or (w.samples is not None and w.samples < MIN_LATENCY_SAMPLES):
        return None
    little = w.concurrency * 1000.0 / p50
    cpu = _positive(w.cpu_per_ad_ms)
    if cpu is not None and 1000.0 / cpu < little:
        return Capacity(1000.0 / cpu, "cpu", little)
    return Capacity(little, "latency", little)


@dataclass(frozen=True, slots=True)
class PerWorkerRate:
    """A per-worker rate (ads/s) and what it was derived from (:func:`per_worker_capacity`)."""

    rate: float
    bound: Bound
    workers: int  #: the workers it divides (``measured``) or averages over
    completion_rate: float | None = None  #: ads/s completed by the pool (``measured``)
    cpu_bound_workers: int = 0  #: of ``workers``, those whose figure was the CPU bound
    #: mean CPU per ad of the live workers that measured it, ms, whichever bound gave ``rate`` (``bound``)
    cpu_per_ad_ms: float | None = None
    concurrency: float | None = None  #: mean concurrency of the live workers with a p50, whichever the bound
    p50_ms: float | None = None  #: mean p50 processing time of the live workers with one, ms, whichever the bound
    little_rate: float | None = None  #: mean of the workers' latency bounds alone (the rule without the CPU cap)
    #: the slowest and the fastest worker behind a mean of ``cpu``/``latency``/``mixed`` (:func:`worker_figures`),
    #: each with its own figures, which reproduce its own rate (None for ``measured``: one pool rate, divided)
    slowest: dict[str, object] | None = None
    fastest: dict[str, object] | None = None

    def wire(self) -> dict[str, object]:
        """camelCase for ``/v1/stats`` (``rates.perWorkerBasis``) and ``/v1/scale`` (``observed``).

        ``cpuPerAdMs``, ``concurrency``, ``p50Ms`` and ``latencyBoundPerSec`` are means over the workers (for
        ``cpu``, ``latency`` and ``mixed``: the ``workers`` whose own rates ``perWorkerPerSec`` is the mean of), so
        with more than one worker they need not reproduce ``perWorkerPerSec`` (a mean of ratios is no ratio of means:
        attack44c F6); ``slowest`` and ``fastest`` are two of those workers, each with figures that give its own
        ``perSec``."""
        return {"bound": self.bound, "perWorkerPerSec": round(self.rate, 3), "workers": self.workers,
                "completedPerSec": self.completion_rate, "cpuBoundWorkers": self.cpu_bound_workers,
                "cpuPerAdMs": self.cpu_per_ad_ms, "concurrency": self.concurrency, "p50Ms": self.p50_ms,
                "latencyBoundPerSec": None if self.little_rate is None else round(self.little_rate, 3),
                "slowest": self.slowest, "fastest": self.fastest}


def worker_figures(w: WorkerLoad, c: Capacity) -> dict[str, object]:
    """One worker's own rate (``perSec``) and the figures that give it: ``concurrency × 1000 / p50Ms`` when
    ``bound`` is ``latency`` (that is ``latencyBoundPerSec``), ``1000 / cpuPerAdMs`` when ``cpu``. Pure."""
    return {"perSec": round(c.rate, 3), "bound": c.bound, "concurrency": w.concurrency,
            "p50Ms": None if w.p50_ms is None else round(w.p50_ms, 4),
            "cpuPerAdMs": _positive(w.cpu_per_ad_ms), "latencyBoundPerSec": round(c.little, 3)}


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def per_worker_capacity(
    workers: Sequence[WorkerLoad] | None,
    *,
    completion_rate: float | None,
    saturated: bool,
    since: float,
    replicas_before: int | None = None,
) -> PerWorkerRate | None:
    """Ads per second one worker completes, and the bound that gave it; None when unknown.

    While the queue stayed non-empty for the whole window (``saturated``; the window began at ``since``,
    epoch seconds), the workers were busy all along, so the measured ``completion_rate`` (ads/s) divided by
    the workers that ran all window (live workers started before ``since``; without registry entries,
    ``replicas_before``) is what one worker does (``measured``). Otherwise (idle workers understate their
    capacity) the mean over the live workers of :func:`worker_capacity`: Little's law capped by the CPU a
    worker spends per ad (``cpu``, ``latency``, or ``mixed`` when the workers differ).
    """
    live = [w for w in workers or () if not (w.draining or w.quiet)]
    steady = [w for w in live if w.started_at <= since]
    # what was measured, reported whichever bound decides the rate (``bound`` names that one)
    timed = [w for w in live if w.concurrency > 0 and _positive(w.p50_ms) is not None]
    figures = {"cpu_per_ad_ms": _mean([c for w in live if (c := _positive(w.cpu_per_ad_ms)) is not None]),
               "concurrency": _mean([float(w.concurrency) for w in timed]),
               "p50_ms": _mean([w.p50_ms for w in timed if w.p50_ms is not None])}
    if saturated and completion_rate is not None and completion_rate > 0:
        n = len(steady) if live else (replicas_before or 0)
        if n > 0:
            return PerWorkerRate(completion_rate / n, "measured", n, completion_rate=completion_rate, **figures)
    known = sorted(((w, c) for w in live if (c := worker_capacity(w)) is not None), key=lambda k: k[1].rate)
    if not known:
        return None
    by_cpu = [w for w, c in known if c.bound == "cpu"]
    by_latency = [w for w, c in known if c.bound == "latency"]
    bound: Bound = "mixed" if by_cpu and by_latency else "cpu" if by_cpu else "latency"
    # the means of the workers the rate is the mean of, not of others (a worker of too few samples has no rate)
    figures = {"cpu_per_ad_ms": _mean([c for w, _ in known if (c := _positive(w.cpu_per_ad_ms)) is not None]),
               "concurrency": _mean([float(w.concurrency) for w, _ in known]),
               "p50_ms": _mean([w.p50_ms for w, _ in known if w.p50_ms is not None])}
    return PerWorkerRate(
        sum(c.rate for _, c in known) / len(known), bound, len(known), cpu_bound_workers=len(by_cpu),
        little_rate=sum(c.little for _, c in known) / len(known), slowest=worker_figures(*known[0]),
        fastest=worker_figures(*known[-1]), **figures,
    )


def per_worker_rate(
    workers: Sequence[WorkerLoad] | None,
    *,
    completion_rate: float | None,
    saturated: bool,
    since: float,
    replicas_before: int | None = None,
) -> float | None:
    """Ads per second one worker completes (the rate of :func:`per_worker_capacity`); None when unknown."""
    found = per_worker_capacity(workers, completion_rate=completion_rate, saturated=saturated, since=since,
                                replicas_before=replicas_before)
    return None if found is None else found.rate


__all__ = [
    "COUNTERS",
    "MIN_LATENCY_SAMPLES",
    "RATE_WINDOW",
    "Bound",
    "Capacity",
    "MonotonicTotal",
    "PerWorkerRate",
    "WorkerLoad",
    "aging_horizon",
    "counter_rates",
    "merge_percentiles",
    "per_worker_capacity",
    "per_worker_rate",
    "step_rates",
    "window_ends",
    "window_rate",
    "window_span",
    "worker_capacity",
    "worker_figures",
]
