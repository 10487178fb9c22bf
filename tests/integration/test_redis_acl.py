"""review28 R1: an API node's Redis health check makes the calls traffic makes, on a real Valkey with ACL users.

Before, the check was ``SET gamead:health``. An ACL user allowed ``SET`` but not scripts read ``ok`` after every
check, then the next rate-limited request's ``EVALSHA`` got ``NOPERM`` and opened the breaker again: ``/readyz``
flapped ok/degraded and the log said "redis is back"/"redis failing" every ``redis.breaker_reset``. A user limited
to gamead's two data prefixes (``gamead:rl:*``, ``gamead:ad:*``) was refused ``gamead:health`` and stayed
``degraded`` for ever, though its cache and shared rate limits worked. Now the check runs the rate limits' script
on a bucket under ``gamead:rl:`` and a cache ``SET``/``GET`` under ``gamead:ad:``: ``ok`` means traffic's calls
work, ``degraded`` names the part refused.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator

import pytest
import redis

from gamead_core.api.cache import AdCache
from gamead_core.api.ratelimit import RateLimiter
from gamead_core.config import RedisSettings
from gamead_core.doctor import redis_writes
from gamead_core.redis_link import RedisLink
from tests.redis_fixtures import ValkeyProc


class Clock:
    """The breaker's clock, moved by hand past ``redis.breaker_reset`` (no waiting)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def acl_user(valkey_server: ValkeyProc) -> Iterator[object]:
    """``make(*rules)`` → the URL of a new ACL user of the session's Valkey with those rules (removed after)."""
    admin = redis.Redis.from_url(valkey_server.url)
    made: list[str] = []

    def make(*rules: str) -> str:
        name = f"r1-{uuid.uuid4().hex[:8]}"
        admin.execute_command("ACL", "SETUSER", name, "on", ">pw", *rules)
        made.append(name)
        return f"redis://{name}:pw@{valkey_server.host}:{valkey_server.port}/0"

    yield make
    for name in made:
        admin.execute_command("ACL", "DELUSER", name)
    admin.close()


def _link(url: str, clock: Clock) -> RedisLink:
    """A link whose calls time out only when Valkey does not answer at all: the default 0.75 s per call (connect +
    command) ran out at load 35-52 (load57), a time-out instead of the refusal these tests look for."""
    return RedisLink(RedisSettings(url=url, breaker_reset=5.0, connect_timeout=30.0, socket_timeout=30.0), clock=clock)


@pytest.mark.parametrize(("rules", "part"), [
    (("~gamead:*", "+@read", "+@write", "+@connection", "-@scripting"), "the rate limits (EVALSHA"),
    (("~gamead:*", "+@all", "-set"), "the cache (SET"),
    (("~gamead:*", "+@read", "+@write", "+@scripting", "+@connection"), "the rate limits (EVALSHA"),  # no TIME
])
def test_a_user_refused_a_call_traffic_makes_stays_degraded_naming_it_without_flapping(
    acl_user: object, rules: tuple[str, ...], part: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = acl_user(*rules)  # type: ignore[operator]

    async def scenario() -> list[str]:
        clock = Clock()
        link = _link(url, clock)
        limiter, cache = RateLimiter(link), AdCache(link, ttl=60)
        seen = []
        try:
            for _ in range(4):  # four breaker_reset periods: a check, then traffic
                await link.check()
                seen.append(link.status())
                await limiter.hit("api", "someone", rate=100, burst=100)
                await cache.get("01aaaaaaaaaaaaaaaaaaaaaaaa")
                seen.append(link.status())
                clock.now += 5.0
            seen.append((await redis_writes.check(link, 0))["redis"])
        finally:
            await link.close()
        return seen

    with caplog.at_level(logging.INFO, logger="gamead_core.redis_link"):
        seen = asyncio.run(scenario())
    *statuses, doctor = seen
    assert all(s.startswith(f"degraded: permission denied for {part}") for s in statuses), statuses
    assert doctor.startswith(f"a write to Redis fails: permission denied for {part}"), doctor
    said = [r.getMessage() for r in caplog.records]
    assert sum("redis failing" in m for m in said) == 1 and not any("redis is back" in m for m in said), said


@pytest.mark.parametrize("commands", [
    ("+@all",),
    ("+@read", "+@write", "+@scripting", "+@connection", "+time"),  # the README's example ACL
    ("+evalsha", "+script|load", "+set", "+get", "+time", "+hmget", "+hset", "+pexpire"),  # the README's minimum
])
def test_a_user_limited_to_gameads_data_prefixes_is_ok_and_traffic_uses_redis(
    acl_user: object, commands: tuple[str, ...]
) -> None:
    url = acl_user("~gamead:rl:*", "~gamead:ad:*", *commands)  # type: ignore[operator]

    async def scenario() -> tuple[bool, str, int, dict[str, str]]:
        link = _link(url, Clock())
        limiter = RateLimiter(link)
        try:
            checked = await link.check()
            status = link.status()
            for _ in range(3):
                await limiter.hit("api", f"who-{uuid.uuid4().hex}", rate=100, burst=100)
            return checked, link.status() if status == "ok" else status, limiter.redis_decisions, \
                await redis_writes.check(link, 0)
        finally:
            await link.close()

    checked, status, shared, doctor = asyncio.run(scenario())
    assert checked and status == "ok", status
    assert shared == 3  # the shared buckets in Redis, not the node's own
    assert doctor == {}
