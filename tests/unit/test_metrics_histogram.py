"""Fleet percentiles from summed heartbeat buckets (gamead_core.telemetry.histogram, stats.fleet_percentiles):
pure, no servers."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from gamead_core.registry import NodeInfo, percentiles
from gamead_core.stats import fleet_percentiles, merge_percentiles
from gamead_core.telemetry.histogram import (
    BUCKETS, LatencyBuckets, WindowedHistogram, bucket_index, bucket_quantile, sum_counts,
)

T0 = 1_000_000.0


def node(name: str, processing_s: list[float], *, buckets: bool = True) -> NodeInfo:
    h = WindowedHistogram()
    for v in processing_s:
        h.observe(v, T0)
    at = datetime.fromtimestamp(T0, timezone.utc)
    return NodeInfo(
        id=name, role="worker", host="h", pid=1, version="0", started_at=at, heartbeat_at=at,
        processing_ms=percentiles(v * 1000 for v in processing_s),
        latency_buckets=LatencyBuckets(processing=h.counts(T0), queue_wait=h.counts(T0)) if buckets else None,
    )


def test_the_issue_example_a_slow_tail_spread_over_two_workers_is_not_hidden() -> None:
    # worker A finished 1 ad in 900 ms (its p99: 900 ms); worker B 100 ads in 4 ms and 1 in 900 ms (its p99:
    # 4 ms). The fleet's 102 ads hold 2 slow ones: its p99 is a slow one. Merging p50/p95/p99 said 4 ms.
    a, b = node("a", [0.9]), node("b", [0.004] * 100 + [0.9])
    assert merge_percentiles([a.processing_ms, b.processing_ms]).p99 == 4.0  # the old, wrong figure
    fleet = fleet_percentiles([a, b], "processing")
    assert fleet.count == 102
    assert fleet.p99 is not None and 500.0 < fleet.p99 <= 1000.0  # in the (0.5 s, 1 s] bucket of the slow ads
    assert fleet.p50 is not None and fleet.p50 <= 5.0


def test_an_older_worker_without_buckets_falls_back_to_the_estimate() -> None:
    a, b = node("a", [0.9]), node("b", [0.004] * 100 + [0.9], buckets=False)
    assert fleet_percentiles([a, b], "processing") == merge_percentiles([a.processing_ms, b.processing_ms])


@given(st.lists(st.lists(st.floats(0, 1000), max_size=40), min_size=1, max_size=5), st.sampled_from([0.5, 0.95, 0.99]))
def test_summed_buckets_give_the_quantile_of_the_pooled_samples(parts: list[list[float]], q: float) -> None:
    pooled = [bucket_index(v) for part in parts for v in part]
    counts = [pooled.count(j) for j in range(len(BUCKETS) + 1)]
    hists = []
    for part in parts:
        h = WindowedHistogram()
        for v in part:
            h.observe(v, T0)
        hists.append(h.counts(T0 + 0.5))
    assert sum_counts(hists, len(BUCKETS) + 1) == counts
    assert bucket_quantile(q, sum_counts(hists, len(BUCKETS) + 1)) == bucket_quantile(q, counts)


def test_window_forgets_what_finished_more_than_a_minute_ago() -> None:
    h = WindowedHistogram()
    h.observe(0.02, T0)
    h.observe(0.02, T0 + 30)
    assert sum(h.counts(T0 + 59)) == 2
    assert sum(h.counts(T0 + 61)) == 1
    assert sum(h.counts(T0 + 200)) == 0


def test_quantile_is_prometheus_histogram_quantile() -> None:
    # 10 values in the first bucket, 10 in the second: the median is the top of the first bucket, p75 half-way
    counts = [10, 10] + [0] * (len(BUCKETS) - 1)
    assert bucket_quantile(0.5, counts) == BUCKETS[0]
    assert abs(bucket_quantile(0.75, counts) - (BUCKETS[0] + BUCKETS[1]) / 2) < 1e-12  # type: ignore[operator]
    assert bucket_quantile(0.99, [0] * len(BUCKETS) + [3]) == BUCKETS[-1]  # all in +Inf: the last finite bound
    assert bucket_quantile(0.5, [0] * (len(BUCKETS) + 1)) is None
