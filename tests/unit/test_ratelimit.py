"""Token-bucket arithmetic: a pure function, and the in-memory store built on it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamead_core.api.ratelimit import Decision, MemoryBuckets, decide, take


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_burst_requests_through_at_once_then_refuses() -> None:
    tokens, t = 5.0, 0.0
    allowed = []
    for _ in range(8):
        tokens, d = take(tokens, t, t, rate=1.0, burst=5)
        allowed.append(d.allowed)
    assert allowed == [True] * 5 + [False] * 3


def test_a_refused_request_is_told_when_to_come_back() -> None:
    level, d = take(0.25, 0.0, 0.0, rate=2.0, burst=10)
    assert not d.allowed
    assert d.retry_after == pytest.approx(0.375)  # 0.75 token missing at 2/s
    assert d.remaining == 0
    assert d.reset == pytest.approx(10 / 2 - 0.125)
    assert dict(d.headers())[b"retry-after"] == b"1"
    # coming back exactly then passes
    _, later = take(level, 0.0, 0.375, rate=2.0, burst=10)
    assert later.allowed


def test_refill_is_proportional_to_time_and_capped_at_burst() -> None:
    level, _ = take(0.0, 0.0, 1.5, rate=2.0, burst=10)
    assert level == pytest.approx(2.0)  # 3 refilled, 1 taken
    level, d = take(0.0, 0.0, 3600.0, rate=2.0, burst=10)
    assert level == pytest.approx(9.0) and d.remaining == 9 and d.limit == 10


def test_a_clock_going_backwards_refills_nothing() -> None:
    level, d = take(1.0, 100.0, 50.0, rate=5.0, burst=10)
    assert d.allowed and level == pytest.approx(0.0)


def test_headers_of_an_allowed_request() -> None:
    d = decide(True, 7.6, rate=2.0, burst=10)
    assert d == Decision(allowed=True, limit=10, remaining=7, reset=pytest.approx(1.2), retry_after=0.0)
    assert dict(d.headers()) == {
        b"x-ratelimit-limit": b"10", b"x-ratelimit-remaining": b"7", b"x-ratelimit-reset": b"2",
        b"x-ratelimit-scope": b"node",  # this node's own bucket (ci53: said, so a fallback is told apart)
    }
    assert dict(decide(True, 7.6, rate=2.0, burst=10, shared=True).headers())[b"x-ratelimit-scope"] == b"shared"


@settings(max_examples=300)
@given(
    rate=st.floats(0.1, 1000.0),
    burst=st.integers(1, 500),
    gaps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=300),
)
def test_never_more_than_burst_plus_rate_times_elapsed(rate: float, burst: int, gaps: list[float]) -> None:
    tokens, t, allowed = float(burst), 0.0, 0
    for gap in gaps:
        now = t + gap
        tokens, d = take(tokens, t, now, rate=rate, burst=burst)
        t = now
        allowed += d.allowed
        assert 0.0 <= tokens <= burst
        assert allowed <= burst + rate * t + 1e-6


@settings(max_examples=200)
@given(rate=st.floats(0.5, 100.0), burst=st.integers(1, 50), idle=st.floats(0.0, 60.0))
def test_a_refused_request_passes_after_retry_after(rate: float, burst: int, idle: float) -> None:
    tokens, t = float(burst), 0.0
    while True:  # drain the bucket
        tokens, d = take(tokens, t, t, rate=rate, burst=burst)
        if not d.allowed:
            break
    _, again = take(tokens, t, t + d.retry_after + 1e-9, rate=rate, burst=burst)
    assert again.allowed


def test_memory_buckets_are_per_key_and_refill_with_the_clock() -> None:
    clock = Clock()
    buckets = MemoryBuckets(clock=clock)
    assert [buckets.take("a", rate=1, burst=2).allowed for _ in range(3)] == [True, True, False]
    assert buckets.take("b", rate=1, burst=2).allowed  # another key has its own bucket
    clock.now += 1.0
    assert buckets.take("a", rate=1, burst=2).allowed
    assert not buckets.take("a", rate=1, burst=2).allowed


def test_memory_buckets_stay_bounded() -> None:
    buckets = MemoryBuckets(max_keys=100, clock=Clock())
    for i in range(1000):
        buckets.take(f"ip:{i}", rate=1, burst=1)
    assert len(buckets) <= 100
    assert not buckets.take("ip:999", rate=1, burst=1).allowed  # the most recent are kept
