"""Token-bucket rate limiting: pure arithmetic, an in-memory store, and an atomic Redis script.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; a request takes one.
:func:`take` is the whole policy and has no I/O. :class:`MemoryBuckets` applies it per node (one-machine
mode, and the fallback while Redis is down); :data:`~gamead_core.redis_calls.TOKEN_BUCKET_LUA` is the same
arithmetic run inside Redis, so every API node shares one bucket per key. The script reads the clock with
``TIME`` on the server, so clock skew between API nodes does not matter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from gamead_core.redis_calls import RATE_LIMIT_PREFIX, TOKEN_BUCKET_LUA
from gamead_core.redis_link import RedisLink

#: Redis key of one bucket: ``gamead:rl:{scope}:{bucket}:{key}`` (scope = the deployment's records bucket, bucket =
#: route class, key = principal or IP).
KEY_PREFIX = RATE_LIMIT_PREFIX


def bucket_key(bucket: str, key: str, scope: str | None = None) -> str:
    """The Redis key of ``key``'s bucket of route class ``bucket`` in the deployment ``scope`` (its records bucket's
    creation, :func:`gamead_core.store.retention.bucket_scope`: two deployments given one Redis share no bucket,
    leftout60); without one, ``gamead:rl:{bucket}:{key}`` (a limiter made with no deployment: tests, tools). Pure."""
    return f"{KEY_PREFIX}{bucket}:{key}" if scope is None else f"{KEY_PREFIX}{scope}:{bucket}:{key}"


def deployment_scope(link: Any) -> str | None:
    """The deployment's scope: its records bucket's (:attr:`gamead_core.store.ads.AdStore.scope`, which follows
    the bucket) as the API's :class:`~gamead_core.api.state.QueueLink` ``link`` holds it, read from memory; None
    before the link is set up or while the bucket is missing."""
    return getattr(getattr(link, "ad_store", None), "scope", None)


class Decision(NamedTuple):
    """The outcome of one request against a bucket, and what the ``X-RateLimit-*`` headers say.

    (A named tuple, not a frozen dataclass: it is built on every request and is ~4x cheaper to make.)
    """

    allowed: bool
    limit: int  #: bucket size (burst)
    remaining: int  #: whole tokens left after this request
    reset: float  #: seconds until the bucket is full again
    retry_after: float  #: seconds until a refused request would pass (0 when allowed)
    #: decided on the bucket every API node shares (in Redis), not on this node's own (no Redis, or it did not
    #: answer this call in time: ci53, a 0.25 s timeout on a loaded machine counted one request on a fresh bucket)
    shared: bool = False

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``X-RateLimit-Limit/Remaining/Reset/Scope`` (``shared`` or ``node``), then ``Retry-After`` if refused."""
        out = [
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % self.remaining),
            (b"x-ratelimit-reset", b"%d" % math.ceil(self.reset)),
            (b"x-ratelimit-scope", b"shared" if self.shared else b"node"),
        ]
        if not self.allowed:
            out.append((b"retry-after", b"%d" % max(1, math.ceil(self.retry_after))))
        return out


def decide(allowed: bool, tokens: float, *, rate: float, burst: int, cost: float = 1.0,
           shared: bool = False) -> Decision:
    """Build the :class:`Decision` from a bucket's level after the request (shared by every store)."""
    if tokens < 0.0:
        tokens = 0.0
    elif tokens > burst:
        tokens = float(burst)
    return Decision(allowed, burst, int(tokens), (burst - tokens) / rate,
                    0.0 if allowed else (cost - tokens) / rate, shared)


def take(
    tokens: float, updated: float, now: float, *, rate: float, burst: int, cost: float = 1.0
) -> tuple[float, Decision]:
    """Refill a bucket that held ``tokens`` at time ``updated`` up to ``now``, then try to take ``cost``.

    Returns the new level (the state to store with ``now``) and the decision. A clock that goes backwards
    refills nothing. Pure: the same inputs always give the same answer.
    """
    elapsed = now - updated
    level = tokens + elapsed * rate if elapsed > 0.0 else tokens
    if level > burst:
        level = float(burst)
    if level >= cost:
        level -= cost
        return level, Decision(True, burst, int(level), (burst - level) / rate, 0.0)
    return level, Decision(False, burst, int(level), (burst - level) / rate, (cost - level) / rate)


class MemoryBuckets:
    """Buckets of one process. Bounded: beyond ``max_keys`` the least recently used are forgotten
    (a forgotten bucket comes back full, which is what an idle bucket would be anyway)."""

    def __init__(self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._max_keys = max_keys
        self._clock = clock

    def take(self, key: str, *, rate: float, burst: int, cost: float = 1.0) -> Decision:
        now = self._clock()
        state = self._buckets.pop(key, None)
        tokens, updated = state if state is not None else (float(burst), now)
        level, decision = take(tokens, updated, now, rate=rate, burst=burst, cost=cost)
        self._buckets[key] = (level, now)  # re-inserted last: dict order is recency order
        if len(self._buckets) > self._max_keys:
            for old in list(self._buckets)[: len(self._buckets) // 10 or 1]:
                del self._buckets[old]
        return decision

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimiter:
    """Takes a token for a request: in Redis when the link is up, else from this node's own buckets."""

    def __init__(self, link: RedisLink | None, *, clock: Callable[[], float] = time.monotonic,
                 scope: Callable[[], str | None] | None = None) -> None:
        """``scope``: the deployment's (:func:`deployment_scope`), read at each request; while it says None (the
        records bucket not listed yet) requests count on this node's own buckets. Without it, unscoped keys."""
        self.link = link
        self._scope = scope
        self.memory = MemoryBuckets(clock=clock)
        self._script: AsyncScript | None = link.client.register_script(TOKEN_BUCKET_LUA) if link else None
        self.redis_decisions = 0
        self.local_decisions = 0
        self.limited = 0

    async def hit(self, bucket: str, key: str, *, rate: float, burst: int, cost: float = 1.0) -> Decision:
        """Take from the shared bucket in Redis; from this node's bucket if there is no link or it is down."""
        if self.link is None or self._script is None:
            return self.hit_local(bucket, key, rate=rate, burst=burst, cost=cost)
        scope = self._scope() if self._scope is not None else None
        if self._scope is not None and scope is None:  # which deployment is not known yet: no shared bucket
            return self.hit_local(bucket, key, rate=rate, burst=burst, cost=cost)
        decision = await self._redis_take(bucket_key(bucket, key, scope), rate, burst, cost)
        if decision is None:
            return self.hit_local(bucket, key, rate=rate, burst=burst, cost=cost)
        self.redis_decisions += 1
        if not decision.allowed:
            self.limited += 1
        return decision

    def hit_local(self, bucket: str, key: str, *, rate: float, burst: int, cost: float = 1.0) -> Decision:
        """Take from this node's own bucket (no I/O, no await: the one-machine hot path)."""
        self.local_decisions += 1
        decision = self.memory.take(f"{bucket}:{key}", rate=rate, burst=burst, cost=cost)
        if not decision.allowed:
            self.limited += 1
        return decision

    async def _redis_take(self, key: str, rate: float, burst: int, cost: float) -> Decision | None:
        assert self.link is not None and self._script is not None
        script = self._script

        async def call(client: Redis) -> list[object]:
            return await script(keys=[key], args=[rate, burst, cost], client=client)  # type: ignore[no-any-return]

        reply = await self.link.guarded(call, None)
        if reply is None:
            return None
        allowed, tokens = reply
        level = float(tokens.decode() if isinstance(tokens, bytes) else tokens)  # type: ignore[arg-type]
        return decide(bool(allowed), level, rate=rate, burst=burst, cost=cost, shared=True)

    def snapshot(self) -> dict[str, object]:
        return {
            "backend": "redis" if self.link is not None else "memory",
            "redisDecisions": self.redis_decisions,
            "localDecisions": self.local_decisions,
            "limited": self.limited,
            "localBuckets": len(self.memory),
        }
