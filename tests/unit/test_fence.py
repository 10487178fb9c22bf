"""The worker's fence over its own heartbeat (gamead_core.worker.fence), without servers: it closes one heartbeat
interval before the registry entry can expire, never while puts succeed, and lifts with the first put that does."""

from __future__ import annotations

import logging

import pytest

from gamead_core.registry.beat import BeatHealth
from gamead_core.worker.fence import Fence


def test_the_fence_closes_one_beat_before_the_entry_can_expire_and_lifts_when_a_beat_is_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health = BeatHealth(last_ok=100.0)
    fence = Fence(health, ttl=10.0, interval=2.0, worker_id="w1")
    assert fence.after == 8.0
    assert not fence.closed(1000.0)  # puts succeed: however long ago the last one was, no fence
    health.failing = True  # the next put failed; the last good one was at 100 s
    with caplog.at_level(logging.INFO, logger="gamead_core.worker.fence"):
        assert not fence.closed(107.9)
        assert fence.closed(108.0) and fence.closed(130.0)
        health.failing, health.last_ok = False, 131.0
        assert not fence.closed(131.0)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2, said  # once when it closed, once when it lifted
    assert said[0].startswith("heartbeat not written for 8.0 s (registry.ttl 10.0 s): taking no work"), said
    assert said[1] == "heartbeat written again: taking work"


def test_a_ttl_of_two_beats_still_leaves_one_beat_of_failure_before_the_fence() -> None:
    health = BeatHealth(last_ok=0.0, failing=True)
    assert Fence(health, ttl=1.0, interval=0.5).after == 0.5
    assert not Fence(health, ttl=1.0, interval=0.5).closed(0.4)
    assert health.unwritten_for(0.4) == pytest.approx(0.4)
