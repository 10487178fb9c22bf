"""attack32b F5: a fresh ``gamead up --workers 2`` after a ``--workers 0`` run in the same data dir said ``!
autoscaler: replicas changed since the last recorded decision (0→2: a call of the previous leader that landed
unrecorded …)``. Its own start is no unrecorded call: named as this stack's start, no warning, no step charged —
while a count no start explains keeps session 31's rules (attack31c F1, review31 R9). Pure (:class:`CountWatch`)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.scaling.apply import Outcome
from gamead_core.scaling.changes import CountWatch
from gamead_core.scaling.policy import ScalingPolicy
from gamead_core.scaling.store import iso

WALL, MONO = 1_000.0, 500.0
#: the previous stack's last line: --workers 0, backend none, advice 0→1 not applied, 5 s before this start
PREVIOUS = [{"at": iso(995.0), "current": 0, "desired": 1, "applied": False, "override": False}]


def test_a_new_stacks_own_workers_are_its_start_not_an_unrecorded_call(caplog: pytest.LogCaptureFixture) -> None:
    policy = ScalingPolicy(AutoscalerSettings(min_replicas=2, max_replicas=3, period_seconds=60))
    watch = CountWatch.after(PREVIOUS, policy, WALL, MONO, SimpleNamespace(started=2))  # LocalScaler.started
    with caplog.at_level(logging.INFO, logger="gamead_core.scaling.loop"):
        text = watch.seen(2, MONO, policy)
    assert text == "this stack started 2 workers (--workers; the last recorded decision left 0)"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # no `!` line on gamead up's console
    assert list(policy._events) == []  # no step of a previous leader: its first scale-up is not held for it
    watch.called(2, 2, Outcome(True, 2, None), MONO, WALL, by_policy=True)  # the tick holds 2
    assert watch.seen(3, MONO + 1, policy) == "replicas changed outside the autoscaler (2→3)"  # later: as before


def test_a_count_the_start_does_not_explain_is_still_a_call_that_landed_unrecorded() -> None:
    policy = ScalingPolicy(AutoscalerSettings(min_replicas=2, max_replicas=4, period_seconds=60))
    watch = CountWatch.after(PREVIOUS, policy, WALL, MONO, SimpleNamespace(started=2))
    assert watch.seen(3, MONO, policy).startswith("replicas changed since the last recorded decision (0→3: a call of "
                                                  "the previous leader that landed unrecorded")
    assert list(policy._events) == [(MONO, 3)]
    kube = CountWatch.after(PREVIOUS, ScalingPolicy(AutoscalerSettings()), WALL, MONO, SimpleNamespace())
    assert "landed unrecorded" in kube.seen(2, MONO, None)  # a backend that starts nothing on its own
