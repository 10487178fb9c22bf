"""Latency histograms a worker sends in its heartbeat, and the fleet's percentiles from their sum.

A percentile of several workers cannot be computed from each worker's percentiles (a merged p99 would never
exceed the largest worker's p99). Bucket counts can be summed: every worker counts its finished ads of the
last :data:`WINDOW` seconds into the same buckets as its Prometheus histograms (:data:`BUCKETS`, upper bounds
in seconds), the API sums them, and :func:`bucket_quantile` reads a percentile off the sum the way
Prometheus' ``histogram_quantile()`` does (linear interpolation inside the bucket), clamped to the smallest and
largest value the workers saw in the window (:attr:`LatencyBuckets.ranges`), so an estimate never lies outside
what was observed. Such a figure is an *estimate*, only known to lie in its bucket: ``/v1/stats`` says so
(``estimate``) and rounds it (:func:`estimate_ms`), ``gamead top`` prints it as ``≈``.

Pure code: no I/O, no clock of its own (the caller passes ``now``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from typing import Final

from pydantic import BaseModel

from gamead_core.models import _WIRE

#: Upper bounds (seconds) of the latency buckets of ``gamead_ad_wait_seconds`` and
#: ``gamead_ad_processing_seconds`` and of the heartbeat's counts; a final ``+Inf`` bucket is implied.
#: From 0.25 ms (one analysis takes 0.1-2 ms: below the 5 ms the buckets began at, every fleet percentile was
#: an interpolation inside 0-5 ms, ≈2.5 ms for a true 0.17 ms; attack29a F5) to 10 min (an ad of level 5
#: waiting out its aging horizon): 20 buckets and ``+Inf``, per priority level.
BUCKETS: Final[tuple[float, ...]] = (
    0.00025, 0.0005, 0.001, 0.0025,
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)
#: Seconds of finished ads the heartbeat's counts cover (the "last minute" of ``/v1/stats``).
WINDOW: Final[float] = 60.0
_SLOT: Final[float] = 1.0  #: width (seconds) of one slot of the sliding window


class LatencyBuckets(BaseModel):
    """Heartbeat field ``latencyBuckets``: per-bucket (not cumulative) counts of the ads a worker finished in
    the last ``windowSeconds``; ``bounds`` are the upper bounds in seconds, the last count is ``+Inf``'s
    (``len(counts) == len(bounds) + 1``). ``queueWaitByLevel`` (added later, optional): the queue-wait counts
    per priority level (JSON keys ``"1"``…``"5"``), only the levels with an ad in the window, so an idle
    level costs the heartbeat nothing."""

    model_config = _WIRE

    bounds: list[float] = list(BUCKETS)
    window_seconds: float = WINDOW
    processing: list[int] = []
    queue_wait: list[int] = []
    queue_wait_by_level: dict[int, list[int]] = {}
    #: (added later, optional) ``[min, max]`` seconds observed in the window, per series: ``"processing"``,
    #: ``"queueWait"``, ``"queueWait.<level>"``; absent from an older worker (its bucket bounds stand in)
    ranges: dict[str, list[float]] = {}


def bucket_index(value: float, bounds: Sequence[float] = BUCKETS) -> int:
    """Index of the bucket ``value`` (seconds) falls in: the first bound ``>= value`` (Prometheus' ``le``);
    ``len(bounds)`` for ``+Inf``."""
    return bisect.bisect_left(bounds, value)


class WindowedHistogram:
    """Bucket counts of the last ``window`` seconds, in one-second slots: ``observe()`` is O(log buckets),
    ``counts()`` O(window × buckets). Memory is fixed: ``window`` slots of ``len(bounds)+1`` integers."""

    def __init__(self, bounds: Sequence[float] = BUCKETS, window: float = WINDOW) -> None:
        self.bounds = tuple(bounds)
        self._slots = max(1, math.ceil(window / _SLOT))
        self._ring: list[list[int]] = [[0] * (len(self.bounds) + 1) for _ in range(self._slots)]
        self._stamp: list[int] = [-1] * self._slots  #: which second each slot currently holds
        self._low: list[float] = [math.inf] * self._slots  #: smallest value of each slot's second
        self._high: list[float] = [-math.inf] * self._slots  #: largest

    def observe(self, value: float, now: float) -> None:
        """Count one ``value`` (seconds) finished at ``now`` (epoch seconds)."""
        self.observe_in(bucket_index(value, self.bounds), value, now)

    def observe_in(self, index: int, value: float, now: float) -> None:
        """:meth:`observe` with the bucket of ``value`` found already (``index``: :func:`bucket_index`)."""
        second = int(now // _SLOT)
        i = second % self._slots
        if self._stamp[i] != second:
            self._ring[i] = [0] * (len(self.bounds) + 1)
            self._stamp[i] = second
            self._low[i], self._high[i] = math.inf, -math.inf
        self._ring[i][index] += 1
        self._low[i] = min(self._low[i], value)
        self._high[i] = max(self._high[i], value)

    def extremes(self, now: float) -> list[float] | None:
        """``[min, max]`` (seconds) of the values observed in the last ``window`` seconds; None when none."""
        second = int(now // _SLOT)
        live = [i for i, stamp in enumerate(self._stamp) if 0 <= second - stamp < self._slots
                and self._low[i] <= self._high[i]]
        if not live:
            return None
        return [round(min(self._low[i] for i in live), 6), round(max(self._high[i] for i in live), 6)]

    def counts(self, now: float) -> list[int]:
        """Per-bucket counts of the values observed in the last ``window`` seconds before ``now``."""
        second = int(now // _SLOT)
        out = [0] * (len(self.bounds) + 1)
        for stamp, slot in zip(self._stamp, self._ring):
            if 0 <= second - stamp < self._slots:
                for j, c in enumerate(slot):
                    out[j] += c
        return out


def sum_counts(parts: Iterable[Sequence[int]], size: int) -> list[int]:
    """Element-wise sum of per-bucket counts; parts of another length than ``size`` are skipped."""
    out = [0] * size
    for part in parts:
        if len(part) != size:
            continue
        for j, c in enumerate(part):
            out[j] += max(0, int(c))
    return out


def _rank_bucket(q: float, counts: Sequence[int]) -> tuple[int, float] | None:
    """Index of the bucket holding the ``q`` rank, and the rank's fraction into it; None when no counts."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for j, c in enumerate(counts):
        if seen + c >= rank and c > 0:
            return j, (rank - seen) / c
        seen += c
    return len(counts) - 1, 1.0


def quantile_bucket(q: float, counts: Sequence[int], bounds: Sequence[float] = BUCKETS) -> tuple[float, float] | None:
    """``(lower, upper)`` bounds (seconds) of the bucket holding the ``q``-quantile (``upper`` = ``inf`` for the
    ``+Inf`` bucket): all that the counts know of it. None when there are no counts."""
    found = _rank_bucket(q, counts)
    if found is None:
        return None
    j = found[0]
    return (0.0 if j == 0 else float(bounds[j - 1]), float(bounds[j]) if j < len(bounds) else math.inf)


def bucket_quantile(q: float, counts: Sequence[int], bounds: Sequence[float] = BUCKETS,
                    observed: Sequence[float] | None = None) -> float | None:
    """The ``q``-quantile (0 < q < 1) of per-bucket ``counts`` over ``bounds`` (seconds), as Prometheus'
    ``histogram_quantile()`` computes it: linear interpolation inside the bucket that holds the rank, the
    first bucket starting at 0, and the upper bound of the last finite bucket when the rank falls in
    ``+Inf``; then clamped to ``observed`` (``[min, max]`` seconds seen, when known). None when no counts."""
    found = _rank_bucket(q, counts)
    if found is None:
        return None
    j, fraction = found
    if j >= len(bounds):  # in +Inf
        value = float(bounds[-1])
    else:
        lower = 0.0 if j == 0 else bounds[j - 1]
        value = lower + (bounds[j] - lower) * fraction
    if observed is not None and len(observed) == 2 and observed[0] <= observed[1]:
        value = min(max(value, float(observed[0])), float(observed[1]))
    return value


def observed_range(counts: Sequence[int], bounds: Sequence[float] = BUCKETS) -> list[float] | None:
    """What ``counts`` alone say of the values' ``[min, max]`` (seconds): the lower bound of the first
    non-empty bucket and the upper bound of the last (the last finite bound for ``+Inf``); None when empty.
    Stands in for a worker that sends no :attr:`LatencyBuckets.ranges`."""
    used = [j for j, c in enumerate(counts) if c > 0]
    if not used:
        return None
    lo, hi = used[0], used[-1]
    return [0.0 if lo == 0 else float(bounds[min(lo, len(bounds)) - 1]), float(bounds[min(hi, len(bounds) - 1)])]


def pool_ranges(parts: Iterable[Sequence[float] | None]) -> list[float] | None:
    """The pooled ``[min, max]`` of several workers' ``[min, max]`` (None parts skipped); None when none."""
    ok = [p for p in parts if p is not None and len(p) == 2]
    return [min(p[0] for p in ok), max(p[1] for p in ok)] if ok else None


def estimate_ms(value_s: float) -> float:
    """A bucket estimate (seconds) in ms, rounded to 2 significant digits: all a 30-60 s bucket supports."""
    value = value_s * 1000
    if value <= 0:
        return 0.0
    digits = 1 - math.floor(math.log10(value))
    return round(value, digits) if digits > 0 else float(round(value, digits))


__all__ = [
    "BUCKETS",
    "LatencyBuckets",
    "WINDOW",
    "WindowedHistogram",
    "bucket_index",
    "bucket_quantile",
    "estimate_ms",
    "observed_range",
    "pool_ranges",
    "quantile_bucket",
    "sum_counts",
]
