"""The Redis circuit breaker as a pure state machine, driven by a hand-held clock. Only the health check (a
write) closes it; traffic only opens it (attack28a F1)."""

from __future__ import annotations

import logging

import pytest

from gamead_core.redis_link import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(failures: int = 3, reset: float = 5.0) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker(failures, reset, clock), clock


def test_opens_after_n_consecutive_failures_only() -> None:
    b, _ = make(failures=3)
    b.record_failure("refused")
    b.record_failure("refused")
    b.record_success()  # not consecutive any more
    b.record_failure("refused")
    b.record_failure("refused")
    assert b.state == "closed" and b.allow()
    b.record_failure("timed out")
    assert b.state == "open"
    assert b.reason == "timed out"
    assert not b.allow()
    assert b.opened == 1 and b.short_circuited == 1


def test_a_refusal_opens_it_at_once() -> None:
    """Redis said no (OOM, READONLY…): not a glitch to count up to the threshold."""
    b, _ = make(failures=3)
    b.record_failure("out of memory", refusal=True)
    assert b.state == "open" and b.reason == "out of memory" and b.opened == 1


def test_only_the_health_check_probes_an_open_breaker_after_reset() -> None:
    b, clock = make(reset=5.0)
    for _ in range(3):
        b.record_failure("refused")
    clock.now = 4.9
    assert not b.check_due() and not b.allow()
    clock.now = 5.0
    assert not b.allow()  # traffic never probes
    assert b.check_due()  # the check does
    assert b.state == "half_open"
    assert not b.allow() and not b.allow()  # everyone else keeps the fallback


def test_a_successful_check_closes_it() -> None:
    b, clock = make()
    for _ in range(3):
        b.record_failure("refused")
    clock.now = 5.0
    assert b.check_due()
    b.record_success(check=True)
    assert b.state == "closed" and b.reason is None and b.consecutive == 0
    assert all(b.allow() for _ in range(10))


def test_a_read_that_succeeds_never_closes_it() -> None:
    """A full Valkey answers GET: a lucky read ending after the breaker opened must not close it."""
    b, clock = make()
    b.record_failure("out of memory", refusal=True)
    b.record_success()
    assert b.state == "open"
    clock.now = 5.0
    assert b.check_due()
    b.record_success()  # a traffic read during the half-open check
    assert b.state == "half_open"
    assert b.reason == "out of memory"


def test_a_failed_check_reopens_it_for_another_reset_period() -> None:
    b, clock = make()
    for _ in range(3):
        b.record_failure("refused")
    clock.now = 5.0
    assert b.check_due()
    b.record_failure("still refused")
    assert b.state == "open" and b.opened == 1  # one outage, not two
    clock.now = 9.9
    assert not b.check_due()
    clock.now = 10.0
    assert b.check_due()


def test_trip_opens_it_whatever_the_count() -> None:
    b, _ = make(failures=3)
    b.trip("cannot connect: connection refused")
    assert b.state == "open" and b.opened == 1 and not b.allow()
    assert b.reason == "cannot connect: connection refused"


def test_a_lasting_refusal_is_one_warning_and_one_info_however_long_it_lasts(caplog: pytest.LogCaptureFixture) -> None:
    """The flapping of F1: reads succeed, writes and checks fail for 60 s, then a check succeeds."""
    b, clock = make(reset=5.0)
    caplog.set_level(logging.INFO, logger="gamead_core.redis_link")
    for second in range(60):
        clock.now = float(second)
        if b.allow():
            b.record_success()  # GET answered
            b.record_failure("out of memory", refusal=True)  # SET refused
        if b.check_due():
            b.record_failure("out of memory", refusal=True)
    clock.now = 60.0
    assert b.check_due()
    b.record_success(check=True)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("redis failing (out of memory)") and lines[1].startswith("redis is back")


def test_snapshot_counts_what_happened() -> None:
    b, _ = make(failures=1)
    b.record_success()
    b.record_failure("refused")
    b.allow()
    snap = b.snapshot()
    assert snap == {
        "state": "open", "reason": "refused", "consecutiveFailures": 1, "failures": 1, "successes": 1,
        "opened": 1, "shortCircuited": 1,
    }


def test_a_passing_check_does_not_reset_the_traffic_failure_streak() -> None:
    """review28 R2: with every heavier traffic call timing out and the check passing once a second between
    them, the traffic's consecutive failures still open the breaker (before, each check reset the count, so
    every request waited out its full timeout and the breaker never opened)."""
    b, _ = make(failures=3)
    for _ in range(2):
        b.record_failure("timed out")
        b.record_success(check=True)  # the health check, between two slow traffic calls
    assert b.state == "closed"
    b.record_failure("timed out")
    assert b.state == "open" and b.reason == "timed out" and not b.allow()


def test_a_traffic_success_still_resets_the_streak() -> None:
    b, _ = make(failures=3)
    b.record_failure("timed out")
    b.record_failure("timed out")
    b.record_success()
    b.record_failure("timed out")
    b.record_failure("timed out")
    assert b.state == "closed" and b.allow()
