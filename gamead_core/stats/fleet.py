"""The fleet's latency percentiles over the last minute, read off the sum of the workers' heartbeat bucket
counts (gamead_core.telemetry.histogram): estimates, clamped to what was observed, that say so (``estimate``).

Pure code: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from gamead_core.registry import NodeInfo, Percentiles, server_started
from gamead_core.stats.rates import WorkerLoad, merge_percentiles
from gamead_core.telemetry.histogram import (
    BUCKETS,
    bucket_quantile,
    estimate_ms,
    observed_range,
    pool_ranges,
    quantile_bucket,
    sum_counts,
)


def _quantile_ms(q: float, counts: list[int], observed: list[float] | None = None) -> float | None:
    """The ``q`` quantile (ms) of summed bucket counts, as ``histogram_quantile()`` reads them, clamped to
    ``observed`` (``[min, max]`` s) and rounded to what a bucket supports (:func:`estimate_ms`)."""
    value = bucket_quantile(q, counts, observed=observed)
    return None if value is None else estimate_ms(value)


def _ms(seconds: float) -> float | None:
    return None if math.isinf(seconds) else round(seconds * 1000, 3)


def bucket_estimate(counts: list[int], observed: list[float] | None, qs: Mapping[str, float]) -> dict[str, object]:
    """What ``/v1/stats`` says of percentiles read off ``counts``: ``{"method": "histogram buckets",
    "bucketMs": {name: [lo, hi]}, "observedMs": [min, max]}`` (ms; ``hi`` None for the ``+Inf`` bucket): the
    true value lies in its bucket and in the observed range, the figure shown is only an estimate inside."""
    buckets = {name: [_ms(b[0]), _ms(b[1])] for name, q in qs.items() if (b := quantile_bucket(q, counts))}
    return {"method": "histogram buckets", "bucketMs": buckets,
            "observedMs": None if observed is None else [_ms(observed[0]), _ms(observed[1])]}


def _our_buckets(node: NodeInfo) -> bool:
    """Does ``node`` send bucket counts on this version's bounds (an older worker may send none or others)?"""
    return node.latency_buckets is not None and node.latency_buckets.bounds == list(BUCKETS)


def _observed(node: NodeInfo, key: str, counts: list[int]) -> list[float] | None:
    """``[min, max]`` (s) ``node`` saw in series ``key``: what it sent, else what its bucket counts bound."""
    assert node.latency_buckets is not None
    sent = node.latency_buckets.ranges.get(key)
    return list(sent) if sent is not None and len(sent) == 2 else observed_range(counts)


_QS = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def fleet_percentiles(workers: Iterable[NodeInfo], kind: str) -> Percentiles:
    """The fleet's p50/p95/p99 (ms) of ``kind`` (``processing`` or ``queue_wait``) over the last minute.

    From the sum of the workers' heartbeat bucket counts (``latencyBuckets``, gamead_core.telemetry.histogram)
    when every worker that finished something sends them: what Prometheus' ``histogram_quantile()`` over
    ``gamead_ad_<kind>_seconds_bucket`` gives, clamped to the pooled observed [min, max], rounded to 2
    significant digits and marked ``estimate`` (:func:`bucket_estimate`). Else (an older worker in the
    fleet) the estimate of :func:`merge_percentiles`."""
    nodes = list(workers)
    legacy = [n.processing_ms if kind == "processing" else n.queue_wait_ms for n in nodes]
    if any(not _our_buckets(n) for n, p in zip(nodes, legacy) if p.count):
        return merge_percentiles(legacy)
    key = "processing" if kind == "processing" else "queueWait"
    parts = [(n, list(getattr(n.latency_buckets, kind))) for n in nodes if n.latency_buckets is not None]
    counts = sum_counts((c for _, c in parts), len(BUCKETS) + 1)
    total = sum(counts)
    if not total:
        return Percentiles()
    observed = pool_ranges(_observed(n, key, c) for n, c in parts if len(c) == len(BUCKETS) + 1 and any(c))
    return Percentiles(**{name: _quantile_ms(q, counts, observed) for name, q in _QS.items()}, count=total,
                       estimate=bucket_estimate(counts, observed, _QS))


def fleet_level_wait(workers: Iterable[NodeInfo]) -> dict[int, Percentiles]:
    """Per priority level, the fleet's queue-wait p95 (ms) over the last minute (only ``p95`` and ``count``
    set, with its ``estimate``): the sum of the workers' ``latencyBuckets.queueWaitByLevel`` counts, read as
    :func:`fleet_percentiles` reads the fleet's (Prometheus' ``histogram_quantile(0.95, …)`` over
    ``gamead_ad_wait_seconds_bucket{priority=…}``, clamped to the observed range). Levels no worker reported
    (idle, or only older workers without the field) are absent."""
    size = len(BUCKETS) + 1
    per_level: dict[int, list[tuple[NodeInfo, list[int]]]] = {}
    for n in workers:
        if _our_buckets(n):
            assert n.latency_buckets is not None
            for level, counts in n.latency_buckets.queue_wait_by_level.items():
                per_level.setdefault(level, []).append((n, list(counts)))
    out: dict[int, Percentiles] = {}
    for level, parts in sorted(per_level.items()):
        counts = sum_counts((c for _, c in parts), size)
        observed = pool_ranges(_observed(n, f"queueWait.{level}", c) for n, c in parts if len(c) == size and any(c))
        if (value := _quantile_ms(0.95, counts, observed)) is not None:
            out[level] = Percentiles(p95=value, count=sum(counts),
                                     estimate=bucket_estimate(counts, observed, {"p95": 0.95}))
    return out


def fleet_level_wait_p95(workers: Iterable[NodeInfo]) -> dict[int, float | None]:
    """Per priority level, the fleet's queue-wait p95 (ms) over the last minute (:func:`fleet_level_wait`)."""
    return {level: p.p95 for level, p in fleet_level_wait(workers).items()}


def worker_load(node: NodeInfo) -> WorkerLoad:
    """What the per-worker rate (:func:`gamead_core.stats.rates.per_worker_capacity`) uses of one worker's
    registry entry."""
    return WorkerLoad(concurrency=int(node.concurrency or 0), p50_ms=node.processing_ms.p50,
                      started_at=server_started(node), draining=node.state == "draining",
                      quiet=node.quiet,
                      cpu_per_ad_ms=node.cpu_per_ad_ms, samples=node.processing_ms.count)


__all__ = ["bucket_estimate", "fleet_level_wait", "fleet_level_wait_p95", "fleet_percentiles", "worker_load"]
