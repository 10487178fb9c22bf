"""The Redis circuit breaker as a pure state machine, driven by a hand-held clock."""

from __future__ import annotations

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


def test_half_open_after_reset_lets_exactly_one_probe_through() -> None:
    b, clock = make(reset=5.0)
    for _ in range(3):
        b.record_failure("refused")
    clock.now = 4.9
    assert not b.allow()
    clock.now = 5.0
    assert b.allow()  # the probe
    assert b.state == "half_open"
    assert not b.allow() and not b.allow()  # everyone else keeps the fallback


def test_a_successful_probe_closes_it() -> None:
    b, clock = make()
    for _ in range(3):
        b.record_failure("refused")
    clock.now = 5.0
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.reason is None and b.consecutive == 0
    assert all(b.allow() for _ in range(10))


def test_a_failed_probe_reopens_it_for_another_reset_period() -> None:
    b, clock = make()
    for _ in range(3):
        b.record_failure("refused")
    clock.now = 5.0
    assert b.allow()
    b.record_failure("still refused")
    assert b.state == "open" and b.opened == 1  # one outage, not two
    clock.now = 9.9
    assert not b.allow()
    clock.now = 10.0
    assert b.allow()


def test_a_probe_that_never_reports_is_replaced_after_reset() -> None:
    b, clock = make()
    for _ in range(3):
        b.record_failure("refused")
    clock.now = 5.0
    assert b.allow()
    clock.now = 9.0
    assert not b.allow()
    clock.now = 10.0
    assert b.allow()


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
