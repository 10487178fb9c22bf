"""The API node's optional link to Redis (or Valkey), behind a circuit breaker.

Redis holds nothing that is the source of truth (rate-limit buckets, a cache of terminal ads), so a Redis
outage must never become an API error. Every call goes through :meth:`RedisLink.guarded`, which returns a
fallback instead of raising and feeds the :class:`CircuitBreaker`::

    closed ──N consecutive failures──▶ open ──reset seconds──▶ half-open ──probe ok──▶ closed
                                        ▲                          │
                                        └──────probe failed────────┘

While the breaker is open, calls are not even attempted (no timeouts to wait out); a background prober
pings Redis so the link reports ``degraded`` without traffic and closes again on its own when Redis returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError as RedisAuthError
from redis.exceptions import (
    AuthorizationError,
    BusyLoadingError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gamead_core.config import RedisSettings
from gamead_core.errors import error_text
from gamead_core.redact import redact_url, without_servers

log = logging.getLogger(__name__)
T = TypeVar("T")

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """A pure state machine; ``clock`` is injectable so tests drive time by hand.

    * closed: calls pass; ``failures`` consecutive failures open it.
    * open: calls are refused until ``reset`` seconds have passed, then one probe is let through
      (half-open). A probe that never reports back is replaced after another ``reset`` seconds.
    * half-open: the probe's success closes the breaker; its failure opens it again for ``reset``.
    """

    def __init__(self, failures: int, reset: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures
        self.reset = reset
        self._clock = clock
        self.state: BreakerState = "closed"
        self.reason: str | None = None
        self.consecutive = 0
        self._opened_at = 0.0
        self._probe_at: float | None = None
        # counters, for /v1/stats
        self.failures = 0
        self.successes = 0
        self.opened = 0
        self.short_circuited = 0

    def allow(self) -> bool:
        """May a call go to Redis now? (In half-open, only the single probe may.)"""
        if self.state == "closed":
            return True
        now = self._clock()
        if self.state == "open":
            if now - self._opened_at < self.reset:
                self.short_circuited += 1
                return False
            self.state = "half_open"
            self._probe_at = now
            return True
        # half-open: a probe is in flight; replace it only if it has gone silent
        if self._probe_at is None or now - self._probe_at >= self.reset:
            self._probe_at = now
            return True
        self.short_circuited += 1
        return False

    def record_success(self) -> None:
        self.successes += 1
        self.consecutive = 0
        if self.state != "closed":
            log.info("redis is back; circuit breaker closed")
        self.state = "closed"
        self.reason = None
        self._probe_at = None

    def record_failure(self, reason: str) -> None:
        self.failures += 1
        self.consecutive += 1
        self.reason = reason
        if self.state == "half_open" or (self.state == "closed" and self.consecutive >= self.threshold):
            if self.state == "closed":
                self.opened += 1
                log.warning("redis failing (%s); circuit breaker open: cache bypassed, local rate limits", reason)
            self.state = "open"
            self._opened_at = self._clock()
            self._probe_at = None

    def snapshot(self) -> dict[str, object]:
        return {
            "state": self.state,
            "reason": self.reason,
            "consecutiveFailures": self.consecutive,
            "failures": self.failures,
            "successes": self.successes,
            "opened": self.opened,
            "shortCircuited": self.short_circuited,
        }


#: Redis's answers, by kind, as a status says them (no server named: the README's "No check names a server")
_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (RedisAuthError, "authentication refused"),
    (AuthorizationError, "authentication refused"),
    (NoPermissionError, "permission denied"),
    (BusyLoadingError, "loading its data set"),
    (ReadOnlyError, "read-only (a replica)"),
    (OutOfMemoryError, "out of memory"),
)


def _errno(exc: BaseException) -> int | None:
    """The OS error number behind ``exc`` (redis-py wraps the ``OSError`` it caught), if any."""
    for link in (exc, exc.__cause__, exc.__context__):
        if isinstance(link, OSError) and link.errno:
            return link.errno
    return None


def _describe(exc: BaseException) -> str:
    """What failed, for the breaker's ``reason`` (``/readyz``, ``/v1/stats``): ``timed out``, ``connection
    refused``, ``authentication refused``…, never the server's host, port or URL (redis-py's own text says
    ``Error 111 connecting to 127.0.0.1:16413``); another error is its class and its text with every server
    named in it replaced (:func:`gamead_core.redact.without_servers`)."""
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, RedisTimeoutError)):
        return "timed out"
    kind = next((said for cls, said in _KINDS if isinstance(exc, cls)), None)
    if kind is not None:
        return kind
    if isinstance(exc, (RedisConnectionError, OSError)):
        number = _errno(exc)
        if number is not None:
            return f"cannot connect: {os.strerror(number).lower()}"
        return "connection lost" if isinstance(exc, RedisConnectionError) else "cannot connect"
    return f"{type(exc).__name__}: {without_servers(error_text(exc, limit=200))}"


class RedisLink:
    """A pooled ``redis.asyncio`` client of one API node, with its breaker and a background prober."""

    def __init__(self, settings: RedisSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not settings.url:
            raise ValueError("RedisLink needs redis.url; leave the link out (None) when it is unset")
        self.settings = settings
        #: for logs and ``/v1/stats``: the URL with any password masked (the pool alone sees the real one)
        self.url: str = redact_url(settings.url) or ""
        self.pool = aioredis.BlockingConnectionPool.from_url(
            settings.url,
            max_connections=settings.max_connections,
            timeout=settings.connect_timeout,  # waiting for a free pooled connection
            socket_timeout=settings.socket_timeout,
            socket_connect_timeout=settings.connect_timeout,
            retry=Retry(NoBackoff(), 0),  # the breaker decides about retrying, not redis-py
        )
        self.client = aioredis.Redis(connection_pool=self.pool)
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset, clock)
        # hard bound on one call: connect + one command, whatever redis-py does inside
        self._call_timeout = settings.connect_timeout + settings.socket_timeout
        self._prober: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> RedisLink | None:
        """The link, or ``None`` in one-machine mode (``redis.url`` unset)."""
        return cls(settings) if settings.url else None

    async def guarded(self, call: Callable[[aioredis.Redis], Awaitable[T]], fallback: T) -> T:
        """``await call(client)``; on any Redis error or timeout return ``fallback`` and tell the breaker.

        Never raises a Redis error. While the breaker is open the call is not attempted at all.
        """
        if not self.breaker.allow():
            return fallback
        try:
            async with asyncio.timeout(self._call_timeout):
                result = await call(self.client)
        except (RedisError, OSError, TimeoutError, asyncio.TimeoutError) as exc:
            self.breaker.record_failure(_describe(exc))
            return fallback
        self.breaker.record_success()
        return result

    @property
    def usable(self) -> bool:
        """False while the breaker is open (callers may skip preparing a call)."""
        return self.breaker.state == "closed"

    def status(self) -> str:
        """``ok`` or ``degraded: <reason>`` for ``/readyz``."""
        if self.breaker.state == "closed":
            return "ok"
        return f"degraded: {self.breaker.reason or 'redis unavailable'} (circuit {self.breaker.state.replace('_', '-')})"

    async def ping(self) -> bool:
        return bool(await self.guarded(lambda r: r.ping(), False))

    async def start(self) -> None:
        """Check Redis once (a failure only counts against the breaker) and start the prober."""
        if not await self.ping():
            log.warning("redis at %s not reachable yet (%s); serving without it", self.url, self.breaker.reason)
        self._prober = asyncio.create_task(self._probe_forever(), name="redis-prober")

    async def _probe_forever(self) -> None:
        """Ping about once a second (and as the half-open probe), so state follows Redis without traffic."""
        interval = min(1.0, self.settings.breaker_reset / 2)
        while True:
            await asyncio.sleep(interval)
            await self.ping()

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
        with contextlib.suppress(Exception):
            await self.client.aclose()
        with contextlib.suppress(Exception):
            await self.pool.aclose()
