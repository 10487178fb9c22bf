"""Pure: what one autoscaler tick decides on (gamead_core.scaling.observe): a sample it cannot use says why,
the policy sees the sampler's figures unchanged, and the decision line names its leader."""

from __future__ import annotations

import pytest

from gamead_core.errors import GameadError
from gamead_core.queue.depth import LevelDepth
from gamead_core.scaling.observe import decision_entry, observation_of, usable_reading
from gamead_core.stats.reading import QueueReading
from gamead_core.stats.sampler import Sample


def test_a_sample_without_nats_or_levels_is_refused_with_the_reason() -> None:
    with pytest.raises(GameadError, match="NATS is not connected"):
        usable_reading(None)
    with pytest.raises(GameadError, match="NATS is not connected"):
        usable_reading(Sample(QueueReading(t=0.0, connected=False)))
    with pytest.raises(GameadError, match=r"no priority level can be read \(consumer not found\)"):
        usable_reading(Sample(QueueReading(t=0.0, connected=True, unreadable=((3, "consumer not found"),))))


def test_the_policy_sees_the_readings_figures() -> None:
    reading = QueueReading(t=100.0, connected=True, levels=(LevelDepth(1, 40, ack_pending=4, oldest_age=12.0),
                                                            LevelDepth(2, 2, ack_pending=1)),
                           unreadable=((5, "timeout"),))
    assert usable_reading(Sample(reading)) is reading
    rates = {"submittedPerSec": 30.0, "completedPerSec": 20.0, "perWorkerPerSec": 5.0}
    obs = observation_of(reading, rates, 3, at=7.0, now=102.5)
    assert (obs.pending, obs.ack_pending, obs.unreadable_levels) == (42, 5, (5,))
    assert (obs.arrival_rate, obs.completion_rate, obs.per_worker_rate) == (30.0, 20.0, 5.0)
    assert (obs.current_replicas, obs.at, obs.metrics_age_s) == (3, 7.0, 2.5)
    assert observation_of(reading, {}, 3, at=7.0, now=99.0).per_worker_rate is None


def test_a_decision_line_says_when_what_and_who() -> None:
    entry = decision_entry(0.0, 2, 4, "backlog 42 ads", True, None, False, "api-1")
    assert entry == {"at": "1970-01-01T00:00:00.000Z", "current": 2, "desired": 4, "reason": "backlog 42 ads",
                     "applied": True, "error": None, "override": False, "leader": "api-1"}


def test_a_level_read_in_part_counts_what_was_read_and_is_still_unreadable() -> None:
    """``queue.partitions: 2`` with one partition's stream down: every level is unreadable as a whole, yet the
    other partition's counts are known. The tick decides on them (a lower bound: the level stays named
    unreadable, so the policy never scales down) instead of giving up on 'no priority level can be read'."""
    reading = QueueReading(t=100.0, connected=True, unreadable=((3, "stream offline"),),
                           partial=(LevelDepth(3, 60, ack_pending=2, oldest_age=5.0),))
    assert usable_reading(Sample(reading)) is reading
    obs = observation_of(reading, {}, 1, at=0.0, now=100.0)
    assert (obs.pending, obs.ack_pending, obs.unreadable_levels) == (60, 2, (3,))
