"""A worker's capacity is capped by the CPU it spends per ad (issue 14, item 6 follow-up): Little's law alone
(concurrency / p50) counted only the analysis and showed "per worker 7677.5/s" for a worker that drains ~850/s.
Pure: the CPU-per-ad meter, the capacity rule, the heartbeat field, and how ``gamead scale status`` says it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from gamead_cli.commands.scale import per_worker_text, status_view
from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.queue.depth import LevelDepth
from gamead_core.registry import NodeInfo, WorkerSelf, worker_node_info
from gamead_core.scaling.observe import observation_of
from gamead_core.scaling.policy import ScalingPolicy
from gamead_core.stats.rates import WorkerLoad, per_worker_capacity, per_worker_rate, worker_capacity
from gamead_core.stats.reading import QueueReading
from gamead_core.worker.counters import CpuPerAd, WorkerStats

# --- the capacity rule -------------------------------------------------------------------------------------


def test_the_issues_figure_a_fast_analysis_is_cpu_bound_not_littles_8000() -> None:
    # concurrency 4, p50 0.5 ms: Little's law promises 4 / 0.0005 s = 8,000 ads/s; 1.18 ms of CPU per ad on
    # one core allows 1 / 0.00118 s = 847 ads/s.
    w = WorkerLoad(concurrency=4, p50_ms=0.5, started_at=0.0, cpu_per_ad_ms=1.18)
    cap = worker_capacity(w)
    assert cap is not None and cap.bound == "cpu"
    assert round(cap.rate) == 847
    found = per_worker_capacity([w], completion_rate=3.0, saturated=False, since=10.0)
    assert found is not None and round(found.rate) == 847 and found.bound == "cpu"
    assert found.wire()["cpuPerAdMs"] == 1.18 and found.wire()["bound"] == "cpu"
    assert found.wire()["latencyBoundPerSec"] == 8000.0  # what the rule said before the CPU cap


def test_a_slow_analysis_stays_latency_bound() -> None:
    # 4 slots of 120 ms: 33.3 ads/s, far below the CPU's 847/s
    w = WorkerLoad(concurrency=4, p50_ms=120.0, started_at=0.0, cpu_per_ad_ms=1.18)
    found = per_worker_capacity([w], completion_rate=3.0, saturated=False, since=10.0)
    assert found is not None and found.bound == "latency"
    assert found.rate == pytest.approx(4 / 0.120)
    assert (found.concurrency, found.p50_ms) == (4.0, 120.0)


def test_unknown_cpu_is_todays_rule() -> None:
    for cpu in (None, 0.0, -1.0, float("nan"), float("inf")):
        w = WorkerLoad(concurrency=4, p50_ms=0.5, started_at=0.0, cpu_per_ad_ms=cpu)
        cap = worker_capacity(w)
        assert cap is not None and cap.bound == "latency" and cap.rate == pytest.approx(8000.0)


def test_the_cpu_bound_alone_is_no_figure() -> None:
    # no processing sample in the last minute: 1 / cpu would overstate a worker whose analyses wait on I/O
    assert worker_capacity(WorkerLoad(concurrency=4, p50_ms=None, started_at=0.0, cpu_per_ad_ms=1.0)) is None
    assert per_worker_rate([WorkerLoad(4, None, 0.0, cpu_per_ad_ms=1.0)], completion_rate=None,
                           saturated=False, since=10.0) is None


def test_a_saturated_queue_is_still_measured_by_completions() -> None:
    workers = [WorkerLoad(4, 0.5, 0.0, cpu_per_ad_ms=1.18), WorkerLoad(4, 0.5, 0.0, cpu_per_ad_ms=1.18)]
    found = per_worker_capacity(workers, completion_rate=1500.0, saturated=True, since=10.0)
    assert found is not None and found.bound == "measured" and found.rate == pytest.approx(750.0)
    assert found.workers == 2 and found.completion_rate == 1500.0


def test_the_cpu_per_ad_is_reported_whenever_it_is_measured_whichever_bound_decides() -> None:
    """C3.4: ``perWorkerBasis.cpuPerAdMs`` was null unless the worker was CPU-bound; a latency-bound or measured
    rate hid the CPU figure the worker heartbeats. Now the figure is there whenever measured; ``bound`` names the
    rule that gave the rate."""
    lat = per_worker_capacity([WorkerLoad(4, 120.0, 0.0, cpu_per_ad_ms=1.18)], completion_rate=1.0,
                              saturated=False, since=1.0)
    assert lat is not None and lat.wire()["bound"] == "latency" and lat.wire()["cpuPerAdMs"] == 1.18
    busy = per_worker_capacity([WorkerLoad(4, 0.5, 0.0, cpu_per_ad_ms=1.0), WorkerLoad(4, 1.5, 0.0, cpu_per_ad_ms=2.0)],
                               completion_rate=1500.0, saturated=True, since=1.0)
    assert busy is not None and busy.bound == "measured"
    assert (busy.cpu_per_ad_ms, busy.concurrency, busy.p50_ms) == (1.5, 4.0, 1.0)
    cpu = per_worker_capacity([WorkerLoad(4, 0.5, 0.0, cpu_per_ad_ms=1.18)], completion_rate=1.0,
                              saturated=False, since=1.0)
    assert cpu is not None and (cpu.wire()["concurrency"], cpu.wire()["p50Ms"]) == (4.0, 0.5)
    unknown = per_worker_capacity([WorkerLoad(4, 120.0, 0.0)], completion_rate=1.0, saturated=False, since=1.0)
    assert unknown is not None and unknown.wire()["cpuPerAdMs"] is None  # never measured: null


def test_workers_bound_differently_are_mixed() -> None:
    workers = [WorkerLoad(4, 0.5, 0.0, cpu_per_ad_ms=2.0), WorkerLoad(4, 100.0, 0.0, cpu_per_ad_ms=2.0)]
    found = per_worker_capacity(workers, completion_rate=1.0, saturated=False, since=10.0)
    assert found is not None and found.bound == "mixed" and found.cpu_bound_workers == 1
    assert found.rate == pytest.approx((500.0 + 40.0) / 2)


loads = st.builds(
    WorkerLoad,
    concurrency=st.integers(0, 256),
    p50_ms=st.one_of(st.none(), st.just(float("nan")), st.floats(-1.0, 1e6)),
    started_at=st.floats(0.0, 100.0),
    draining=st.booleans(),
    cpu_per_ad_ms=st.one_of(st.none(), st.sampled_from([float("nan"), float("inf")]), st.floats(-1.0, 1e4)),
)


@given(w=loads)
def test_a_capacity_never_exceeds_either_bound(w: WorkerLoad) -> None:
    cap = worker_capacity(w)
    if cap is None:
        return
    assert w.p50_ms is not None and cap.rate <= w.concurrency * 1000.0 / w.p50_ms * (1 + 1e-9)
    if w.cpu_per_ad_ms is not None and 0 < w.cpu_per_ad_ms < float("inf"):
        assert cap.rate <= 1000.0 / w.cpu_per_ad_ms * (1 + 1e-9)


@given(workers=st.lists(loads, max_size=6), completion=st.floats(0.0, 1e5))
def test_an_unsaturated_pool_never_exceeds_its_fastest_cpu_bound(workers: list[WorkerLoad],
                                                                 completion: float) -> None:
    found = per_worker_capacity(workers, completion_rate=completion, saturated=False, since=50.0)
    live = [w for w in workers if not w.draining and worker_capacity(w) is not None]
    if found is None:
        assert not live
        return
    ceilings = [worker_capacity(w).rate for w in live]  # type: ignore[union-attr]
    assert found.rate <= max(ceilings) * (1 + 1e-9)
    if all(w.cpu_per_ad_ms is not None and 0 < w.cpu_per_ad_ms < float("inf") for w in live):
        assert found.rate <= max(1000.0 / w.cpu_per_ad_ms for w in live) * (1 + 1e-9)  # type: ignore[operator]


# --- the worker's meter ------------------------------------------------------------------------------------


def test_cpu_per_ad_over_the_intervals_with_work() -> None:
    meter = CpuPerAd(window=30.0, min_ads=20)
    assert meter.update(0.0, 10.0, 0) is None  # one point: nothing yet
    assert meter.update(2.0, 10.5, 0) is None  # idle: 0.5 s of polling, no ad
    assert meter.update(4.0, 10.5 + 0.0236, 20) == pytest.approx(1.18)  # 23.6 ms over 20 ads
    # idle again: the polling is not charged to the ads, and the figure stands
    assert meter.update(6.0, 11.0, 20) == pytest.approx(1.18)


def test_too_few_ads_keep_the_last_figure_and_old_points_leave_the_window() -> None:
    meter = CpuPerAd(window=30.0, min_ads=20)
    meter.update(0.0, 0.0, 0)
    assert meter.update(1.0, 0.040, 20) == pytest.approx(2.0)
    assert meter.update(2.0, 0.041, 21) == pytest.approx(41 / 21, rel=1e-3)  # the window: 41 ms / 21 ads
    assert meter.update(40.0, 0.050, 22) == pytest.approx(41 / 21, rel=1e-3)  # 1 ad in 30 s: stands
    assert meter.update(41.0, 0.060, 42) == pytest.approx(0.5)  # 10 ms over the 20 new ads


def test_a_counter_going_down_restarts_the_measurement() -> None:
    meter = CpuPerAd(window=30.0, min_ads=1)
    meter.update(0.0, 1.0, 50)
    assert meter.update(1.0, 1.1, 100) == pytest.approx(2.0)
    assert meter.update(2.0, 1.2, 10) == pytest.approx(2.0)  # restarted: no negative interval
    assert meter.update(3.0, 1.21, 20) == pytest.approx(1.0)


def test_a_clock_stepped_back_restarts_the_measurement() -> None:
    """attack39b F10: 60 beats at 1 ms per ad, the clock stepped back an hour, then 10 ms per ad. Figure before
    (the step kept every older point in the window): 5.6 ms per ad 30 s after the change (7.0 at 60 s), the
    autoscaler counting the worker at up to 1.8× its capacity; now 10.0. The worker passes the monotonic clock,
    which never steps: this is the meter's own guard."""
    meter, cpu, settled = CpuPerAd(window=30.0, min_ads=20), 0.0, 0
    for t in range(60):
        cpu, settled = cpu + 0.010, settled + 10
        meter.update(1_000_000.0 + t, cpu, settled)
    for t in range(31):
        cpu, settled = cpu + 0.100, settled + 10
        figure = meter.update(1_000_000.0 - 3600 + t, cpu, settled)
    assert figure == pytest.approx(10.0)


def test_worker_stats_count_every_settled_ad() -> None:
    st_ = WorkerStats(processed=5, failed=2, skipped=1)
    assert st_.settled == 8
    assert st_.cpu_per_ad_ms(now=0.0) is None  # first point


# --- the heartbeat --------------------------------------------------------------------------------------------


def _me(cpu: float | None) -> WorkerSelf:
    return WorkerSelf(id="w-1", concurrency=4, started=0.0, in_flight=0, processed=1, failed=0, last_error=None,
                      last_progress=0.0, recent=[], holding=[], task_timeout=30.0, ack_wait=30.0, cpu_per_ad_ms=cpu)


def test_the_heartbeat_carries_cpu_per_ad_and_an_old_one_still_parses() -> None:
    info = worker_node_info(_me(1.18), now=10.0)
    wire = json.loads(info.model_dump_json())
    assert wire["cpuPerAdMs"] == 1.18
    del wire["cpuPerAdMs"]  # a heartbeat of a worker from before the field
    old = NodeInfo.model_validate(wire)
    assert old.cpu_per_ad_ms is None


# --- gamead scale status ------------------------------------------------------------------------------------


def test_status_says_which_bound_gave_the_per_worker_rate() -> None:
    cpu = per_worker_capacity([WorkerLoad(4, 0.5, 0.0, cpu_per_ad_ms=1.18)], completion_rate=1.0,
                              saturated=False, since=1.0)
    assert cpu is not None
    assert per_worker_text(round(cpu.rate, 3), cpu.wire()) == (
        "847.5 ads/s (CPU-bound: 1.18 ms CPU per ad; concurrency / p50 alone: 8,000 ads/s)")
    lat = per_worker_capacity([WorkerLoad(4, 120.0, 0.0, cpu_per_ad_ms=1.18)], completion_rate=1.0,
                              saturated=False, since=1.0)
    assert lat is not None
    assert per_worker_text(lat.rate, lat.wire()) == (
        "33.3 ads/s (latency-bound: concurrency 4 / p50 120 ms; 1.18 ms CPU per ad)")
    busy = per_worker_capacity([WorkerLoad(4, 0.5, 0.0)] * 2, completion_rate=1500.0, saturated=True, since=1.0)
    assert busy is not None
    assert per_worker_text(busy.rate, busy.wire()) == (
        "750.0 ads/s (measured: 1,500.0 ads/s completed (last minute) by 2 busy worker(s))")  # no worker's CPU
    measured = per_worker_capacity([WorkerLoad(4, 0.5, 0.0, cpu_per_ad_ms=1.18)] * 2, completion_rate=1500.0,
                                   saturated=True, since=1.0)
    assert measured is not None and per_worker_text(measured.rate, measured.wire()) == (
        "750.0 ads/s (measured: 1,500.0 ads/s completed (last minute) by 2 busy worker(s); mean 1.18 ms CPU per ad)")
    # newcomer58: a bare "unknown" (an idle stack under an override) said neither why nor what would measure it
    assert per_worker_text(None, None) == "unknown: no worker measured it over the last minute (too few ads analysed)"
    assert per_worker_text(80.0, None) == "80.0 ads/s"  # an older leader without the basis
    # attack31c F5: a slow worker's rate keeps 2 significant digits (it was "0.0 ads/s", beside "needs 3")
    assert per_worker_text(0.022, {"bound": "measured", "completedPerSec": 0.044, "workers": 2}) == (
        "0.022 ads/s (measured: 0.044 ads/s completed (last minute) by 2 busy worker(s))")


def test_status_view_labels_the_ticks_column_and_the_per_worker_row() -> None:
    doc = {"backend": "local", "current": 1, "desired": 1, "minReplicas": 1, "maxReplicas": 4,
           "observed": {"pending": 1234, "ackPending": 1, "oldestAgeSeconds": 0.0, "submittedPerSec": 2.0,
                        "perWorkerPerSec": 847.458,
                        "perWorkerBasis": {"bound": "cpu", "cpuPerAdMs": 1.18, "workers": 1}},
           "decisions": [{"at": "2026-11-30T11:00:00Z", "lastAt": "2026-11-30T11:00:09Z", "repeats": 10,
                          "current": 1, "desired": 1, "applied": True, "reason": "hold 1 worker"}]}
    console = Console(width=160, record=True)
    console.print(status_view(doc))
    text = console.export_text()
    assert "per worker  847.5 ads/s (CPU-bound: 1.18 ms CPU per ad)" in text
    # units46: the observed counts say what they count (was "observed    pending 0, ack pending 0, oldest 0.0 s")
    assert "observed    pending 1,234 ads, ack pending 1 ad, oldest 0.0 s, queued 2.0 ads/s" in text, text
    header = next(line for line in text.splitlines() if "TIME" in line and "REASON" in line)
    assert header.split()[:3] == ["TIME", "(UTC)", "TICKS"]


def test_the_decision_reason_names_the_bound() -> None:
    reading = QueueReading(t=100.0, connected=True, levels=(LevelDepth(3, 3000),))
    rates = {"submittedPerSec": 0.0, "completedPerSec": 0.0, "perWorkerPerSec": 847.5}
    obs = observation_of(reading, rates, 1, at=0.0, now=100.0, basis={"bound": "cpu", "cpuPerAdMs": 1.18})
    decision = ScalingPolicy(AutoscalerSettings(min_replicas=1, max_replicas=10, target_drain_seconds=1)).decide(obs)
    assert "at 847.5 ads/s per worker (CPU-bound) needs 4 workers" in decision.reason
    assert observation_of(reading, rates, 1, at=0.0, now=100.0).per_worker_bound is None  # an older sampler
