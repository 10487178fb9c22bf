"""Pure: the autoscaler and a quiet worker (quiet48, ``gamead workers quiet ID``): its figures are no capacity (left
out of the per-worker rate, as a draining worker's), and with work to do the need counts it on top."""

from __future__ import annotations

import pytest

from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.queue.depth import LevelDepth
from gamead_core.scaling.policy import Observation, ScalingPolicy
from gamead_core.stats.rates import WorkerLoad, per_worker_capacity


def test_a_quiet_worker_is_no_capacity_and_the_need_counts_it_on_top() -> None:
    busy = WorkerLoad(concurrency=4, p50_ms=100.0, started_at=0.0, samples=50)
    quiet = WorkerLoad(concurrency=4, p50_ms=1.0, started_at=0.0, samples=50, quiet=True)
    rate = per_worker_capacity([busy, quiet], completion_rate=None, saturated=False, since=10.0)
    assert rate is not None and rate.workers == 1 and rate.rate == pytest.approx(40.0)  # before: 1 ÷ mean of both
    measured = per_worker_capacity([busy, quiet], completion_rate=40.0, saturated=True, since=10.0)
    assert measured is not None and measured.rate == pytest.approx(40.0)  # 40 ads/s by one worker, not by two

    def decide_at(quiet_workers: int, backlog: int) -> tuple[int | None, str]:
        levels = [LevelDepth(3, backlog, oldest_age=1.0)] if backlog else []
        d = ScalingPolicy(AutoscalerSettings(max_replicas=10)).decide(Observation(
            at=0.0, levels=levels, ack_pending=0, arrival_rate=0.0, completion_rate=0.0, per_worker_rate=10.0,
            current_replicas=2, quiet_workers=quiet_workers))
        return d.raw_recommendation, d.reason

    base, _ = decide_at(0, 1_000)
    raw, reason = decide_at(1, 1_000)
    assert raw == (base or 0) + 1 and "+ 1 quiet" in reason, reason
    assert decide_at(1, 0)[0] == 0  # nothing to do: no replica asked for a quiet one


def test_every_worker_quiet_with_work_and_no_rate_starts_one_more_not_a_hold_for_ever() -> None:
    """probe49: `gamead workers quiet --all`, then an ad: a quiet worker completes nothing, so no per-worker rate
    is measured (and the last one is forgotten after 10 min); the autoscaler held ``backlog 1 ad but no per-worker
    rate measured yet → hold 2 workers`` for ever and the ad stayed queued (146 s and counting on a live stack,
    max 4). As at 0 replicas (activation), all of them quiet start one more."""
    def decide(current: int, quiet_workers: int, backlog: int, max_replicas: int = 4) -> tuple[int, str]:
        levels = [LevelDepth(3, backlog, oldest_age=1.0)] if backlog else []
        d = ScalingPolicy(AutoscalerSettings(min_replicas=2, max_replicas=max_replicas)).decide(Observation(
            at=0.0, levels=levels, ack_pending=0, arrival_rate=0.0, completion_rate=0.0, per_worker_rate=None,
            current_replicas=current, quiet_workers=quiet_workers))
        return d.desired, d.reason

    assert decide(2, 2, 1) == (3, "backlog 1 ad at 2 replicas, every one quiet: activation → scale 2→3 workers")
    assert decide(2, 1, 1) == (2, "backlog 1 ad but no per-worker rate measured yet → hold 2 workers")  # one takes
    assert decide(2, 2, 0)[0] == 2  # nothing waits: nothing to start
    assert decide(4, 4, 1, max_replicas=4)[0] == 4  # at max: held (gamead doctor says every worker is quiet)
