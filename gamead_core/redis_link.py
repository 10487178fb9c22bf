"""The API node's optional link to Redis (or Valkey), behind a circuit breaker.

Redis holds nothing that is the source of truth (rate-limit buckets, a cache of terminal ads), so a Redis
outage must never become an API error. Every call goes through :meth:`RedisLink.guarded`, which returns a
fallback instead of raising and feeds the :class:`~gamead_core.redis_breaker.CircuitBreaker` (its states and
rules are there). While the breaker is open, calls are not even attempted (no timeouts to wait out).

Health is what traffic does, not a ``PING`` (attack28a F1, review28 R1): :meth:`RedisLink.check` runs, about once
a second (``min(1 s, redis.breaker_reset / 2)``), the rate limits' token-bucket script (``EVALSHA``) on a bucket of
its own under ``gamead:rl:`` and a cache ``SET`` with a TTL and ``GET`` under ``gamead:ad:``
(:mod:`gamead_core.redis_calls`). So a full Valkey (``maxmemory`` with ``noeviction``: ``OOM``) or a read-only
replica (``READONLY``), which answer ``PING`` and reads, keep the node ``degraded: out of memory`` until writes are
stored again; an ACL user who may ``SET`` but not run scripts reads ``degraded: permission denied for the rate
limits …`` for as long as that holds (before, a ``SET``-only check closed the breaker and the next rate-limited
request opened it again: a flap every ``breaker_reset``), and one limited to those two prefixes reads ``ok``.
Only this check closes the breaker. The same check at start (:meth:`RedisLink.start`) leaves a node whose Redis
is away ``degraded`` from its first ``/readyz`` (F2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple, TypeVar

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
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gamead_core.config import RedisSettings
from gamead_core.errors import error_text
from gamead_core.redact import redact_url, without_servers
from gamead_core.redis_breaker import BreakerState, CircuitBreaker
from gamead_core.redis_calls import HEALTH_BUCKET_KEY, HEALTH_CACHE_KEY, HEALTH_TTL_MS, TOKEN_BUCKET_LUA
from gamead_core.redis_memory import full_for_writes
from gamead_core.stop_bound import ended

log = logging.getLogger(__name__)
T = TypeVar("T")


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


def _unresolved(exc: BaseException) -> socket.gaierror | None:
    """The name-resolution failure behind ``exc`` (``getaddrinfo``'s, whose negative code ``os.strerror`` reads
    as ``unknown error -2``), if that is what it is."""
    for link in (exc, exc.__cause__, exc.__context__):
        if isinstance(link, socket.gaierror):
            return link
    return None


def _script_acl(exc: BaseException) -> bool:
    """Is ``exc`` a script's call refused by the user's ACL (``ACL failure in script: … no permissions to run the
    'time' command``: a plain error reply, not ``NOPERM``)?"""
    return isinstance(exc, ResponseError) and str(exc).startswith("ACL failure")


def _describe(exc: BaseException, host: str | None = None) -> str:
    """What failed, for the breaker's ``reason`` (``/readyz``, ``/v1/stats``): ``timed out``, ``connection
    refused``, ``authentication refused``, ``out of memory``…, never the server's host, port or URL (redis-py's
    own text says ``Error 111 connecting to 127.0.0.1:16413``); another error is its class and its text with
    every server named in it replaced (:func:`gamead_core.redact.without_servers`). ``host``: for a log line,
    where a host name that does not resolve is named (``cannot resolve host redis.invalid: name or service not
    known``; a status says ``cannot resolve the host: …``)."""
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, RedisTimeoutError)):
        return "timed out"
    kind = next((said for cls, said in _KINDS if isinstance(exc, cls)), None)
    if kind is not None:
        return kind
    if _script_acl(exc):
        return "permission denied"
    if (dns := _unresolved(exc)) is not None:
        why = str(dns.strerror or "name or service not known").lower()
        return f"cannot resolve host {host}: {why}" if host else f"cannot resolve the host: {why}"
    if isinstance(exc, (RedisConnectionError, OSError)):
        number = _errno(exc)
        if number is not None:
            return f"cannot connect: {os.strerror(number).lower()}"
        return "connection lost" if isinstance(exc, RedisConnectionError) else "cannot connect"
    return f"{type(exc).__name__}: {without_servers(error_text(exc, limit=200))}"


#: Failures that are Redis's answer about itself, not a passing glitch: the breaker opens at once on one (full,
#: a replica, the user not permitted, credentials refused, still loading its data). An error reply about one
#: command or key (``WRONGTYPE``, a script's error) only counts towards ``redis.breaker_failures``.
_REFUSALS: tuple[type[BaseException], ...] = (OutOfMemoryError, ReadOnlyError, NoPermissionError, RedisAuthError,
                                              AuthorizationError, BusyLoadingError)


def _refusal(exc: BaseException) -> bool:
    """Is ``exc`` Redis refusing writes as a whole (:data:`_REFUSALS`, or ``MISCONF``: it cannot persist), or the
    user's ACL refusing a command (``NOPERM``, or a script's ``ACL failure``)?"""
    return isinstance(exc, _REFUSALS) or _script_acl(exc) or (
        isinstance(exc, ResponseError) and str(exc).startswith("MISCONF"))
_FAILURES = (RedisError, OSError, TimeoutError, asyncio.TimeoutError)

#: The parts of the health check, as a status names a part refused on its own (``permission denied for …``)
RATE_LIMITS = "the rate limits (EVALSHA of the token-bucket script on gamead:rl:*)"
CACHE = "the cache (SET with a TTL and GET on gamead:ad:*)"


class ProbeFailure(NamedTuple):
    """A health check that failed: which part (:data:`RATE_LIMITS` or :data:`CACHE`) and Redis's error."""

    part: str
    error: BaseException

    def describe(self, host: str | None = None) -> str:
        """:func:`_describe` of the error, naming the part when the refusal is about it alone (``permission
        denied for the rate limits (EVALSHA …)``, a script's error), not about Redis as a whole (full, a
        replica, away: said as before, ``out of memory``)."""
        said = _describe(self.error, host)
        alone = isinstance(self.error, NoPermissionError) or _script_acl(self.error) or (
            isinstance(self.error, ResponseError) and not _refusal(self.error))
        return f"{said} for {self.part}" if alone else said


class RedisLink:
    """A pooled ``redis.asyncio`` client of one API node, with its breaker and a background health check."""

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
        #: the host the URL names (for log lines only), None for a unix socket
        self.host: str | None = self.pool.connection_kwargs.get("host")
        self.client = aioredis.Redis(connection_pool=self.pool)
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset, clock)
        # hard bound on one call: connect + one command, whatever redis-py does inside
        self._call_timeout = settings.connect_timeout + settings.socket_timeout
        self._prober: asyncio.Task[None] | None = None
        #: the rate limits' script, as traffic runs it (``EVALSHA``; ``SCRIPT LOAD`` on ``NOSCRIPT``)
        self._health_bucket = self.client.register_script(TOKEN_BUCKET_LUA)

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> RedisLink | None:
        """The link, or ``None`` in one-machine mode (``redis.url`` unset)."""
        return cls(settings) if settings.url else None

    def _failed(self, exc: BaseException, said: str | None = None, logged: str | None = None) -> None:
        self.breaker.record_failure(said or _describe(exc), refusal=_refusal(exc),
                                    said=logged or _describe(exc, self.host))

    async def guarded(self, call: Callable[[aioredis.Redis], Awaitable[T]], fallback: T) -> T:
        """``await call(client)``; on any Redis error or timeout return ``fallback`` and tell the breaker.

        Never raises a Redis error. While the breaker is not closed the call is not attempted at all.
        """
        if not self.breaker.allow():
            return fallback
        try:
            async with asyncio.timeout(self._call_timeout):
                result = await call(self.client)
        except _FAILURES as exc:
            self._failed(exc)
            return fallback
        self.breaker.record_success()
        return result

    @property
    def usable(self) -> bool:
        """False while the breaker is not closed (callers may skip preparing a call)."""
        return self.breaker.state == "closed"

    def status(self) -> str:
        """``ok`` or ``degraded: <reason>`` for ``/readyz``."""
        if self.breaker.state == "closed":
            return "ok"
        return f"degraded: {self.breaker.reason or 'redis unavailable'} (circuit {self.breaker.state.replace('_', '-')})"

    async def write_probe(self) -> ProbeFailure | None:
        """The calls traffic makes, once, past the breaker (review28 R1): the rate limits' token-bucket script
        (``EVALSHA``, loaded if the server lacks it, as traffic does) on :data:`HEALTH_BUCKET_KEY`, then ``SET``
        (one byte, :data:`HEALTH_TTL_MS` ms) and ``GET`` of :data:`HEALTH_CACHE_KEY`. None when all were done,
        else the first that failed and why (a full Valkey with ``noeviction`` or a read-only replica still
        answers ``PING`` and reads, an ACL user may be allowed ``SET`` but not scripts: only these calls prove
        the node's cache and shared rate limits work); then ``INFO memory``: full with ``noeviction`` after them is
        ``out of memory`` too (:meth:`_room_left`). Never raises a Redis error; feeds nothing."""
        calls: tuple[tuple[str, Callable[[], Awaitable[object]]], ...] = (
            (RATE_LIMITS, lambda: self._health_bucket(keys=[HEALTH_BUCKET_KEY], args=[1000, 1, 0],
                                                      client=self.client)),
            (CACHE, lambda: self.client.set(HEALTH_CACHE_KEY, b"1", px=HEALTH_TTL_MS)),
            (CACHE, lambda: self.client.get(HEALTH_CACHE_KEY)),
        )
        for part, call in calls:
            try:
                async with asyncio.timeout(self._call_timeout):
                    await call()
            except _FAILURES as exc:
                return ProbeFailure(part, exc)
        return await self._room_left()

    async def _room_left(self) -> ProbeFailure | None:
        """After the check's writes: ``INFO memory`` says whether the next write is refused (full with
        ``noeviction``: the check's own keys expiring let its writes pass at the edge, :mod:`gamead_core.redis_memory`),
        as an ``out of memory`` failure of the cache. An ``INFO`` refused (an ACL user without it) tells nothing."""
        try:
            async with asyncio.timeout(self._call_timeout):
                info = await self.client.info("memory")
        except ResponseError:  # NOPERM and other refusals of INFO alone: the writes were stored, that stands
            return None
        except _FAILURES as exc:
            return ProbeFailure(CACHE, exc)
        why = full_for_writes(info)
        return None if why is None else ProbeFailure(CACHE, OutOfMemoryError(why))

    async def check(self) -> bool:
        """The health check: :meth:`write_probe` when the breaker lets it run (:meth:`CircuitBreaker.check_due`),
        its verdict fed to the breaker, the only call that may close it. True when Redis takes traffic's calls."""
        if not self.breaker.check_due():
            return False
        failure = await self.write_probe()
        if failure is not None:
            self._failed(failure.error, failure.describe(), failure.describe(self.host))
            return False
        self.breaker.record_success(check=True)
        return True

    async def start(self) -> None:
        """Check Redis once and start the health check's loop. A failed first check opens the breaker at once
        (attack28a F2): the node says ``degraded`` from its first ``/readyz`` until a write is stored."""
        failure = await self.write_probe()
        if failure is None:
            self.breaker.record_success(check=True)
        else:
            self.breaker.trip(failure.describe())
            log.warning("redis at %s not usable yet (%s); serving without it (cache bypassed, local rate limits) "
                        "until a write to it is stored", self.url, failure.describe(self.host))
        self._prober = asyncio.create_task(self._check_forever(), name="redis-prober")

    async def _check_forever(self) -> None:
        """Check about once a second (and as the half-open probe), so state follows Redis without traffic."""
        interval = min(1.0, self.settings.breaker_reset / 2)
        while True:
            await asyncio.sleep(interval)
            await self.check()

    async def close(self) -> None:
        if self._prober is not None:
            await ended([self._prober], 2.0, "the Valkey prober")  # cancelled again until it ends (hang50), bounded
        with contextlib.suppress(Exception):
            await self.client.aclose()
        with contextlib.suppress(Exception):
            await self.pool.aclose()


__all__ = ["CACHE", "RATE_LIMITS", "BreakerState", "CircuitBreaker", "ProbeFailure", "RedisLink"]
