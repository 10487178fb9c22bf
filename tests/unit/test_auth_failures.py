"""Failed authentication on one node's own buckets (no Redis, or Redis down): attack28a F6.

Against real ``gamead serve`` nodes sharing a Valkey: ``tests/integration/test_auth_failures.py``.
"""

from __future__ import annotations

import asyncio

from gamead_core.api.auth_failures import FailedAuth, Lockouts
from gamead_core.api.ratelimit import Decision, RateLimiter
from gamead_core.config import RateSettings


def test_without_redis_the_limit_is_per_node() -> None:
    """The same rule on a node's own buckets (no Redis, or Redis down): the bucket, then a lock until a token is
    back, then one more failure allowed."""
    now = [100.0]
    failures = FailedAuth(RateSettings(rate=1.0, burst=2), clock=lambda: now[0])
    limiter = RateLimiter(None, clock=lambda: now[0])
    taken = [asyncio.run(failures.charge(limiter, "10.0.0.9")) for _ in range(3)]
    assert [d.allowed for d in taken if d] == [True, True, False]
    locked = failures.locked("10.0.0.9")
    assert locked is not None and not locked.allowed and locked.headers()[-1] == (b"retry-after", b"1")
    assert failures.locked("10.0.0.8") is None  # another address
    now[0] += 1.0
    assert failures.locked("10.0.0.9") is None
    again = asyncio.run(failures.charge(limiter, "10.0.0.9"))
    assert again is not None and again.allowed


def test_lockouts_stay_bounded() -> None:
    locks = Lockouts(max_keys=3)
    refused = Decision(False, 5, 0, 10.0, 2.0)
    for n in range(10):
        locks.lock(f"10.0.1.{n}", 0.0, refused)
    assert len(locks) == 3 and locks.check("10.0.1.0", 1.0) is None and locks.check("10.0.1.9", 1.0) is not None


def test_rate_limits_off_charge_nothing() -> None:
    failures = FailedAuth(None)
    assert asyncio.run(failures.charge(RateLimiter(None), "10.0.0.9")) is None and failures.locked("10.0.0.9") is None
