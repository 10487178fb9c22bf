"""Latency histograms a worker sends in its heartbeat, and the fleet's percentiles from their sum.

A percentile of several workers cannot be computed from each worker's percentiles (a merged p99 would never
exceed the largest worker's p99). Bucket counts can be summed: every worker counts its finished ads of the
last :data:`WINDOW` seconds into the same buckets as its Prometheus histograms (:data:`BUCKETS`, upper bounds
in seconds), the API sums them, and :func:`bucket_quantile` reads a percentile off the sum the way
Prometheus' ``histogram_quantile()`` does (linear interpolation inside the bucket). So ``/v1/stats``,
``gamead top`` and a Grafana panel over ``gamead_ad_processing_seconds_bucket`` agree, exact to the bucket.

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
#: From 5 ms (one analysis) to 10 min (an ad of level 5 waiting out its aging horizon).
BUCKETS: Final[tuple[float, ...]] = (
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

    def observe(self, value: float, now: float) -> None:
        """Count one ``value`` (seconds) finished at ``now`` (epoch seconds)."""
        second = int(now // _SLOT)
        i = second % self._slots
        if self._stamp[i] != second:
            self._ring[i] = [0] * (len(self.bounds) + 1)
            self._stamp[i] = second
        self._ring[i][bucket_index(value, self.bounds)] += 1

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


def bucket_quantile(q: float, counts: Sequence[int], bounds: Sequence[float] = BUCKETS) -> float | None:
    """The ``q``-quantile (0 < q < 1) of per-bucket ``counts`` over ``bounds`` (seconds), as Prometheus'
    ``histogram_quantile()`` computes it: linear interpolation inside the bucket that holds the rank, the
    first bucket starting at 0, and the upper bound of the last finite bucket when the rank falls in
    ``+Inf``. None when there are no counts."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for j, c in enumerate(counts):
        if seen + c >= rank and c > 0:
            if j >= len(bounds):  # in +Inf
                return float(bounds[-1])
            lower = 0.0 if j == 0 else bounds[j - 1]
            return lower + (bounds[j] - lower) * ((rank - seen) / c)
        seen += c
    return float(bounds[-1])


__all__ = [
    "BUCKETS",
    "LatencyBuckets",
    "WINDOW",
    "WindowedHistogram",
    "bucket_index",
    "bucket_quantile",
    "sum_counts",
]
