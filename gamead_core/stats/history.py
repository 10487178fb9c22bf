"""The ``history`` of ``/v1/stats``: one point per sample for each series, kept in rings (no I/O).

A request only slices the rings (:meth:`History.tail`), so answering never walks the samples.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import TYPE_CHECKING, Any

from gamead_core import names
from gamead_core.stats.rates import COUNTERS as _COUNTERS
from gamead_core.stats.rates import step_rates

if TYPE_CHECKING:
    from gamead_core.stats.sampler import Sample

SERIES = ("t", *(f"pending.{lvl}" for lvl in names.LEVELS), "ackPending", *_COUNTERS,
          "processingP95Ms", "queueWaitP95Ms", "dlqSize")


class History:
    """The series of the last ``keep`` samples."""

    def __init__(self, keep: int) -> None:
        self._series: dict[str, deque[Any]] = {name: deque(maxlen=keep) for name in SERIES}

    def add(self, prev: Sample | None, sample: Sample) -> None:
        """Extend every series by the point of ``sample`` (``prev``, the one before, gives the step rates)."""
        series, reading = self._series, sample.reading
        series["t"].append(round(sample.t, 3))
        for level in names.LEVELS:
            depth = reading.level(level)
            series[f"pending.{level}"].append(None if depth is None else depth.pending)
        series["ackPending"].append(reading.ack_pending)
        for key, attr in _COUNTERS.items():
            series[key].append(step_rates([(prev.t, getattr(prev, attr)), (sample.t, getattr(sample, attr))])[1]
                               if prev is not None else None)
        series["processingP95Ms"].append(sample.processing.p95)
        series["queueWaitP95Ms"].append(sample.queue_wait.p95)
        series["dlqSize"].append(sample.dlq_size)

    def tail(self, points: int | None, interval: float) -> dict[str, Any]:
        """The last ``points`` points of every series (all when None), as ``/v1/stats`` ``history``."""
        size = len(self._series["t"])
        n = size if points is None else max(0, min(points, size))

        def tail(name: str) -> list[Any]:
            values = self._series[name]
            return list(itertools.islice(values, size - n, size)) if n else []

        return {
            "intervalSeconds": interval,
            "points": n,
            "t": tail("t"),
            "pending": {str(lvl): tail(f"pending.{lvl}") for lvl in names.LEVELS},
            **{name: tail(name) for name in SERIES if name != "t" and not name.startswith("pending.")},
        }


__all__ = ["SERIES", "History"]
