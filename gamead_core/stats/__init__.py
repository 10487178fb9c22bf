"""What ``/v1/stats``, ``gamead top`` and the autoscaler know of the queue: one sampler, one reading.

* :mod:`~gamead_core.stats.reading`: one reading of the queue (levels, work stream, registry): the I/O;
* :mod:`~gamead_core.stats.rates`: the pure arithmetic (rates over a window, totals that only grow,
  merged percentiles, the per-worker rate);
* :mod:`~gamead_core.stats.sampler`: :class:`QueueSampler`, a ring of readings and the rates derived from
  it — the one source of truth;
* :mod:`~gamead_core.stats.history` and :mod:`~gamead_core.stats.document`: the ``/v1/stats`` document.

A request never talks to NATS: the sampler samples every ``interval`` seconds in the background of each
API node and the documents are rendered from memory.
"""

from gamead_core.stats.fleet import fleet_percentiles
from gamead_core.stats.rates import (
    RATE_WINDOW,
    MonotonicTotal,
    WorkerLoad,
    aging_horizon,
    merge_percentiles,
    per_worker_rate,
    step_rates,
    window_rate,
)
from gamead_core.stats.reading import QueueReading, read_queue
from gamead_core.stats.sampler import QueueSampler, Sample

__all__ = [
    "RATE_WINDOW",
    "MonotonicTotal",
    "QueueReading",
    "QueueSampler",
    "Sample",
    "WorkerLoad",
    "aging_horizon",
    "fleet_percentiles",
    "merge_percentiles",
    "per_worker_rate",
    "read_queue",
    "step_rates",
    "window_rate",
]
