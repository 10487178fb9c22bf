"""attack32a F1: after three sub-millisecond analyses the autoscaler kept "17,174.7 ads/s per worker (last
measured)" for ever — a latency bound (concurrency ÷ p50) of too few samples, ~20× what a worker process can do —
while ``gamead scale status`` said ``per worker  unknown`` and ``-o json`` null. Pure: the capacity rule, the
policy's kept figure and its age, and how ``scale status`` says the figure the reason line used."""

from __future__ import annotations

from gamead_cli.commands.scale import per_worker_text
from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.queue.depth import LevelDepth
from gamead_core.scaling.policy import LAST_RATE_MAX_AGE, Observation, ScalingPolicy
from gamead_core.scaling.reason import reason_kind
from gamead_core.stats.rates import MIN_LATENCY_SAMPLES, WorkerLoad, per_worker_capacity, worker_capacity

# concurrency 4 / p50 0.2329 ms: Little's law's ~17,175 ads/s, the finding's 17,174.7
FAST = {"concurrency": 4, "p50_ms": 0.2329, "started_at": 0.0}


def test_a_latency_bound_of_a_few_samples_is_no_per_worker_rate() -> None:
    assert worker_capacity(WorkerLoad(**FAST, samples=3)) is None
    assert per_worker_capacity([WorkerLoad(**FAST, samples=3)], completion_rate=0.05, saturated=False,
                               since=10.0) is None
    enough = worker_capacity(WorkerLoad(**FAST, samples=MIN_LATENCY_SAMPLES))
    assert enough is not None and enough.bound == "latency" and round(enough.rate) == 17175
    # the CPU a worker measured bounds it, whatever Little's law says
    capped = worker_capacity(WorkerLoad(**FAST, samples=MIN_LATENCY_SAMPLES, cpu_per_ad_ms=1.1))
    assert capped is not None and capped.bound == "cpu" and round(capped.rate, 1) == 909.1


def _obs(at: float, rate: float | None, backlog: int = 50, basis: dict | None = None,
         window: float | None = None) -> Observation:
    if basis is None and rate is not None:
        basis = {"bound": "cpu", "perWorkerPerSec": rate, "cpuPerAdMs": 1.1}
    return Observation(at=at, levels=[LevelDepth(3, backlog, oldest_age=1.0)], ack_pending=0, arrival_rate=0.5,
                       completion_rate=0.0, per_worker_rate=rate, current_replicas=2, metrics_age_s=1.0,
                       per_worker_bound=(basis or {}).get("bound"), per_worker_basis=basis, rate_window_s=window)


def test_the_last_measured_rate_says_its_age_and_is_dropped_after_the_documented_time() -> None:
    policy = ScalingPolicy(AutoscalerSettings(min_replicas=1, max_replicas=8))
    measured = policy.decide(_obs(0.0, 909.1))
    assert "909.1 ads/s per worker (CPU-bound)" in measured.reason
    assert measured.per_worker is None  # the observation's own figure: /v1/scale says it already
    kept = policy.decide(_obs(120.0, None))
    assert "909.1 ads/s per worker (last measured 120s ago) needs 1 worker" in kept.reason
    assert kept.per_worker == {"perWorkerPerSec": 909.1, "perWorkerBasis": {
        "bound": "cpu", "perWorkerPerSec": 909.1, "cpuPerAdMs": 1.1, "windowSeconds": None,
        "lastMeasuredSecondsAgo": 120}}
    dropped = policy.decide(_obs(LAST_RATE_MAX_AGE + 1, None))
    assert dropped.reason == (f"backlog 50 ads but no per-worker rate measured in the last {LAST_RATE_MAX_AGE:g}s → "
                              "hold 2 workers")
    assert dropped.per_worker is None and reason_kind(dropped.reason) == "no rate"


def test_an_initial_rate_is_named_as_such_in_the_observed_figures() -> None:
    policy = ScalingPolicy(AutoscalerSettings(min_replicas=1, max_replicas=8, initial_per_worker_rate=0.5))
    decision = policy.decide(_obs(0.0, None, backlog=30))
    assert "at 0.50 ads/s per worker (initial, none measured yet)" in decision.reason
    assert decision.per_worker == {"perWorkerPerSec": 0.5, "perWorkerBasis": {"bound": "initial"}}
    assert per_worker_text(0.5, {"bound": "initial"}) == "0.50 ads/s (initial_per_worker_rate: none measured yet)"


def test_scale_status_says_the_kept_figure_and_its_age_as_the_reason_does() -> None:
    basis = {"bound": "cpu", "cpuPerAdMs": 1.1, "latencyBoundPerSec": 17174.7, "lastMeasuredSecondsAgo": 120}
    assert per_worker_text(909.1, basis) == ("909.1 ads/s (last measured 120s ago; CPU-bound: 1.10 ms CPU per ad; "
                                             "concurrency / p50 alone: 17,175 ads/s)")
    assert per_worker_text(40.0, {"lastMeasuredSecondsAgo": 7}) == "40.0 ads/s (last measured 7s ago)"


def test_a_kept_measured_rate_says_the_window_it_was_measured_over() -> None:
    """review44 F3: a rate measured over a young sampler's 20 s and kept 42 s later, when the rates are over a
    minute, was said as "completed (last minute)" (the window now); it says its own "last 20 s"."""
    policy = ScalingPolicy(AutoscalerSettings(min_replicas=1, max_replicas=8))
    basis = {"bound": "measured", "perWorkerPerSec": 60.0, "completedPerSec": 120.0, "workers": 2}
    policy.decide(_obs(0.0, 60.0, basis=basis, window=20.0))
    kept = policy.decide(_obs(42.0, None, window=60.0))
    assert kept.per_worker is not None
    text = per_worker_text(60.0, kept.per_worker["perWorkerBasis"], 60.0)
    assert text == "60.0 ads/s (last measured 42s ago; measured: 120.0 ads/s completed (last 20 s) by 2 busy worker(s))"
