"""Fleet and per-level latency percentiles are read off histogram buckets (drill 25d §0, 25 #7): the figure
must lie in the true value's bucket and within what was observed, be shown as an estimate (``≈``, 2
significant digits) and a level's WAIT P95 is called over its MAX WAIT only when the bucket says so."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace
from typing import Any

from gamead_cli.tui.view_figures import approx_ms, wait_verdict
from gamead_cli.tui.view_queue import LevelRow, level_text, metric_rows, queue_title
from gamead_core.stats.fleet import fleet_level_wait, fleet_percentiles
from gamead_core.telemetry.histogram import BUCKETS, LatencyBuckets, bucket_index
from gamead_core.telemetry.metrics import WorkerMetrics
from gamead_core.registry import Percentiles

NOW = 1_000_000.0


def node(metrics: WorkerMetrics, now: float = NOW, *, legacy: bool = False) -> Any:
    """What the API reads of a heartbeat, through the wire form; ``legacy``: an older worker (no ``ranges``)."""
    fields = metrics.buckets(now)
    if legacy:
        fields.pop("ranges")
    wire = LatencyBuckets(**fields).model_dump_json(by_alias=True)
    return SimpleNamespace(latency_buckets=LatencyBuckets.model_validate_json(wire),
                           processing_ms=Percentiles(), queue_wait_ms=Percentiles())


def true_quantile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def bucket_of(value_s: float) -> tuple[float, float]:
    j = bucket_index(value_s)
    return (0.0 if j == 0 else BUCKETS[j - 1]) * 1000, (BUCKETS[j] if j < len(BUCKETS) else math.inf) * 1000


def rel_close(shown: float, edge: float) -> bool:
    """``shown`` is ``edge`` to 2 significant digits (the estimate's rounding)."""
    return abs(shown - edge) <= 0.05 * abs(edge) + 1e-9


def test_an_estimate_lies_in_the_true_values_bucket_and_within_what_was_observed() -> None:
    rng = random.Random(7)
    workers = [WorkerMetrics(enabled=False) for _ in range(3)]
    waits: list[float] = []
    procs: list[float] = []
    for i in range(600):  # the drill's shape: waits 0-31 s (mostly < 30 s), processing 400-425 ms
        wait, proc = rng.uniform(0, 31.0), rng.uniform(0.400, 0.425)
        waits.append(wait)
        procs.append(proc)
        workers[i % 3].completed(5, proc, wait, NOW)
    nodes = [node(w) for w in workers]
    for kind, values in (("queue_wait", waits), ("processing", procs)):
        got = fleet_percentiles(nodes, kind)
        assert got.estimate is not None and got.estimate["method"] == "histogram buckets"
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            shown = getattr(got, name)
            lo, hi = bucket_of(true_quantile(values, q))
            assert (lo <= shown or rel_close(shown, lo)) and (shown <= hi or rel_close(shown, hi)), (kind, name)
            assert rel_close(shown, min(values) * 1000) or shown >= min(values) * 1000, (kind, name)
            assert rel_close(shown, max(values) * 1000) or shown <= max(values) * 1000, (kind, name)
            assert got.estimate["bucketMs"][name] == [lo, None if math.isinf(hi) else hi]
    # the drill: P5 WAIT P95 read 56.10s from the 30-60 s bucket when no ad waited more than 31 s
    assert fleet_level_wait(nodes)[5].p95 <= 31_000


def test_all_analyses_over_400ms_never_give_a_p50_under_400ms() -> None:
    w = WorkerMetrics(enabled=False)
    for i in range(100):
        w.completed(3, 0.400 + i * 0.0002, 0.01, NOW)
    got = fleet_percentiles([node(w)], "processing")
    assert got.p50 is not None and got.p50 >= 400  # was 375 ms: linear from 250 ms inside the 250-500 ms bucket
    assert got.p95 is not None and got.p95 <= 420


def test_one_sub_millisecond_analysis_is_not_reported_as_5ms() -> None:
    w = WorkerMetrics(enabled=False)
    w.completed(3, 0.00038, 0.001, NOW)
    got = fleet_percentiles([node(w)], "processing")
    assert got.p95 == 0.38  # was 4.75 ms: 95 % of the 0-5 ms bucket
    rows = {m.key: m for m in metric_rows({"latency": {"processingMs": got.model_dump()}})}
    assert rows["proc"].value == "≈0.38ms"


def test_analyses_of_a_tenth_to_2ms_read_as_what_the_workers_measured() -> None:
    """attack29a F5: analyses of 0.1-2 ms all fell in the 0-5 ms bucket, so ``top`` printed ``p50 ≈2.5ms`` beside
    the workers' own 0.17 ms. The buckets now begin at 0.25 ms, and a figure in the lowest bucket is the bound
    it is: ``≤0.25ms``."""
    rng = random.Random(29)
    workers = [WorkerMetrics(enabled=False) for _ in range(2)]
    procs: list[float] = []
    for i in range(600):  # the drill's shape: most analyses 0.12-0.22 ms, a fifth 0.5-2 ms
        proc = rng.uniform(0.00012, 0.00022) if rng.random() < 0.8 else rng.uniform(0.0005, 0.002)
        procs.append(proc)
        workers[i % 2].completed(3, proc, 0.001, NOW)
    got = fleet_percentiles([node(w) for w in workers], "processing")
    assert got.estimate is not None
    p50, p95 = true_quantile(procs, 0.5) * 1000, true_quantile(procs, 0.95) * 1000
    assert got.estimate["bucketMs"]["p50"] == [0.0, 0.25] and p50 <= 0.25
    lo, hi = got.estimate["bucketMs"]["p95"]
    assert lo <= p95 <= hi and hi - lo <= 1.5  # 1-2.5 ms: the p95 to within a bucket of 1.5 ms, not 5
    rows = {m.key: m for m in metric_rows({"latency": {"processingMs": got.model_dump()}})}
    assert rows["proc"].note.startswith("p50 ≤0.25ms · ")  # not ≈0.13ms: all the counts know is "at most"
    assert rows["proc"].value.startswith("≈") and p95 / 2 <= float(rows["proc"].value[1:-2]) <= p95 * 2


def test_an_older_worker_without_ranges_still_counts_bounded_by_its_buckets() -> None:
    new, old = WorkerMetrics(enabled=False), WorkerMetrics(enabled=False)
    for _ in range(10):
        new.completed(2, 0.41, 1.0, NOW)
        old.completed(2, 0.30, 1.0, NOW)
    got = fleet_percentiles([node(new), node(old, legacy=True)], "processing")
    assert got.count == 20 and got.p50 is not None and 250 <= got.p50 <= 500
    assert got.estimate is not None and got.estimate["observedMs"] == [250.0, 500.0]  # old's bucket bounds


def test_estimates_are_shown_with_an_approx_sign_and_two_significant_digits() -> None:
    assert approx_ms(56_102.0) == "≈56s" and approx_ms(375.0) == "≈380ms" and approx_ms(None) == "-"
    stats = {"latency": {"queueWaitMs": {"p50": 9_800.0, "p95": 31_000.0, "p99": 31_000.0},
                         "processingMs": {"p50": 400.0, "p95": 420.0, "p99": 420.0}}}
    rows = {m.key: m for m in metric_rows(stats)}
    assert rows["wait"].value == "≈31s" and rows["wait"].note == "p50 ≈9.8s · p99 ≈31s"
    assert rows["proc"].value == "≈420ms"
    assert "wait p95 ≈31s" in queue_title(stats, 120)


def estimate(bucket: list[float | None], observed: list[float]) -> dict[str, Any]:
    return {"method": "histogram buckets", "bucketMs": {"p95": bucket}, "observedMs": observed}


def test_a_levels_wait_p95_is_a_breach_only_when_its_bucket_says_so() -> None:
    straddles = estimate([30_000.0, 60_000.0], [100.0, 55_000.0])
    assert wait_verdict(56_000.0, 40, straddles) == "unsure"
    assert wait_verdict(31_000.0, 40, straddles) == "unsure"  # the true p95 may still be over 40 s
    assert wait_verdict(56_000.0, 40, estimate([30_000.0, 60_000.0], [100.0, 31_000.0])) == "within"
    assert wait_verdict(70_000.0, 40, estimate([60_000.0, 120_000.0], [100.0, 90_000.0])) == "over"
    assert wait_verdict(700_000.0, 40, estimate([600_000.0, None], [100.0, 900_000.0])) == "over"
    assert wait_verdict(20_000.0, 40, estimate([10_000.0, 30_000.0], [100.0, 55_000.0])) == "within"
    row = LevelRow(5, 62, 4, 2, 31.0, 40.0, False, [], wait_p95=56_000.0, wait_estimate=straddles)
    assert level_text(row).endswith("≈56s?")
    within = LevelRow(5, 62, 4, 2, 31.0, 40.0, False, [], wait_p95=31_000.0,
                      wait_estimate=estimate([30_000.0, 60_000.0], [100.0, 31_000.0]))
    assert level_text(within).endswith(" ≈31s")
