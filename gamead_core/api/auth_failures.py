"""Failed authentication: bounded 401s and log lines, never a valid caller refused (attack28a F6, review28 A1-A5).

Where tokens are required and rate limits are on, a request without a valid token (none, or a wrong one) takes
one token from its client's *failure* bucket (``ratelimit.failed_auth``: 1/s, burst 20 by default; a budget of
its own, apart from the anonymous request limit). The 401 it gets carries the ``X-RateLimit-*`` headers; past
the bucket the answer is 429 ``rate_limited`` with ``Retry-After`` instead, and no log line of its own (it is
counted in the next summary line, :mod:`~gamead_core.api.refusal_log`).

A valid token is always compared and served, whatever its address sent before (review28 A1): behind a load
balancer or a NAT every caller may share one address, and one client with a stale token must not lock everyone
out. So the limit bounds the 401s and the log, not guessing: a guess that hits is served whatever the bucket
says. Online guessing is bounded by the token itself — a long random secret (``openssl rand -hex 32``: 2^256
tries); a short or repetitive one is warned about at start (:func:`~gamead_core.api.auth.weak_tokens`).

Counting is node-local and cheap (review28 A3): no Redis round trip and no Redis key per failed attempt, no I/O at
all; the buckets live in a bounded ``cachetools.TTLCache`` (:data:`MAX_CLIENTS` clients, each forgotten once its
bucket would be full again, the least recently used first beyond that), so memory is bounded whatever the number
of addresses. A client is its address, an IPv6 one its /64 (:func:`client_key`: one host's subnet counts once).

The ``refused: 401`` and ``refused: 403`` lines are throttled per client key and status and overall
(:class:`~gamead_core.api.refusal_log.RefusalLog`: one line of a kind every :data:`LOG_EVERY` s, :data:`LOG_LINES`
lines in all per :data:`LOG_EVERY` s), rate limits on or off; what was left out is said in one summary line
``refusals not logged: N in the last 5 s (401: n, 429: m) from K clients, the most from <client> (n)``, at the
next refusal or from a timer, so a burst that stops is summarised too. Every refusal is still counted in
``gamead_http_requests_total``. The audit trail records no 401 (no caller is known) and throttles 403s per caller
(``audit.refusals_per_minute``).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import time
from collections.abc import Callable

from cachetools import TTLCache
from starlette.responses import Response
from starlette.types import Scope

from gamead_core.api.errors import error_response
from gamead_core.api.forwarded import normal_address
from gamead_core.api.ratelimit import Decision, take
from gamead_core.api.refusal_log import RefusalLog
from gamead_core.config import RateSettings

#: the gate's logger: the refusal lines keep the logger name they always had
log = logging.getLogger("gamead_core.api.middleware")

#: seconds between two logged refusal lines of one client and status, and of one summary window
LOG_EVERY = 5.0
#: refusal lines of all clients logged per LOG_EVERY seconds at most (then they are only counted in the summary)
LOG_LINES = 20
#: client keys whose log lines are throttled at once (the least recent is forgotten: its next line is logged)
LOG_ADDRESSES = 4096
#: clients whose failure buckets are kept at once (a forgotten one comes back full: what an idle one would be)
MAX_CLIENTS = 65_536
#: addresses whose client key is remembered (:func:`client_key`; ~0.2 KB each, the least recent forgotten)
CLIENT_KEYS = 4096


@functools.lru_cache(maxsize=CLIENT_KEYS)
def client_key(address: str) -> str:
    """The client a failed authentication, or an anonymous request's rate limit (958f5211), is counted to: an IPv4
    address itself (an IPv4-mapped IPv6 one as IPv4), an IPv6 address's /64 (``2001:db8:1:2::/64``: one host or LAN
    gets a /64, RFC 6177); anything else (``unknown``, a unix socket) as given. Pure, so memoised for the last
    :data:`CLIENT_KEYS` addresses: it runs for every anonymous request (every ``POST /ads`` where no token is
    required), and parsing an address cost 3 µs (IPv4) to 17 µs (IPv6) a call, of ~500 µs a POST (review41b F3)."""
    ip = normal_address(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class FailureBuckets:
    """Token buckets of failed authentications per client key, on this node only (pure arithmetic:
    :func:`~gamead_core.api.ratelimit.take`; ``clock``: monotonic seconds). Bounded by ``max_clients``."""

    def __init__(self, limit: RateSettings, *, max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        # an entry untouched for burst / rate seconds is a full bucket again: dropping it then changes nothing
        self._buckets: TTLCache[str, tuple[float, float]] = TTLCache(
            maxsize=max_clients, ttl=limit.burst / limit.rate, timer=clock)

    def take(self, key: str) -> Decision:
        """Take one token from ``key``'s bucket: allowed (a 401) or not (a 429), with the headers' figures."""
        now = self._clock()
        tokens, updated = self._buckets.get(key, (float(self.limit.burst), now))
        level, decision = take(tokens, updated, now, rate=self.limit.rate, burst=self.limit.burst)
        self._buckets[key] = (level, now)
        return decision

    def __len__(self) -> int:
        return len(self._buckets)


class FailedAuth:
    """What the gate does with a request that failed authentication (see the module docstring). ``limit``:
    ``ratelimit.failed_auth``, None when rate limits are off (then only the log lines are throttled); ``every``:
    seconds of the log-line windows."""

    def __init__(self, limit: RateSettings | None, *, clock: Callable[[], float] = time.monotonic,
                 every: float = LOG_EVERY) -> None:
        self.limit = limit
        self.buckets = FailureBuckets(limit, clock=clock) if limit is not None else None
        self.lines = RefusalLog(every=every, most=LOG_LINES, max_kinds=LOG_ADDRESSES)
        self._clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def charge(self, address: str) -> Decision | None:
        """Take one token from ``address``'s client's failure bucket (no I/O); None when rate limits are off."""
        return self.buckets.take(client_key(address)) if self.buckets is not None else None

    def answer(self, decision: Decision, address: str) -> Response:
        """The 429 ``rate_limited`` answer to a client over its failed-authentication limit; no line is logged
        (it is counted in the next summary)."""
        assert self.limit is not None
        self.lines.left_out(client_key(address), 429, self._clock())
        self._flush_later()
        retry = max(1, int(-(-decision.retry_after // 1)))
        response = error_response(
            429, "rate_limited",
            f"too many requests without a valid API token from this client address: {self.limit.burst} at once, "
            f"{self.limit.rate:g}/s sustained (ratelimit.failed_auth); retry after {retry}s (a valid token is "
            "served meanwhile)",
            {"limit": self.limit.burst, "rate": self.limit.rate,
             "retryAfter": float(f"{decision.retry_after:.3f}")},
            None,
        )
        response.raw_headers.extend(decision.headers())
        return response

    def log_refusal(self, level: int, address: str, message: str, *args: object, **extra: object) -> None:
        """Log one refusal line (``message % args``, with ``client`` and ``extra`` as fields: ``status`` among
        them) unless its kind or all kinds are over their line budget (:class:`RefusalLog`); a summary due is
        logged first."""
        now = self._clock()
        self.flush(now)
        status = extra.get("status")
        if not self.lines.allow(client_key(address), status if isinstance(status, int) else 0, now, level):
            self._flush_later()
            return
        log.log(level, message, *args, extra={"client": address, **extra})

    def flush(self, now: float | None = None) -> None:
        """Log the summary of the lines left out when it is due (at the next refusal, or from the timer)."""
        said = self.lines.summary(self._clock() if now is None else now)
        if said is None:
            return
        log.log(max(said.level, logging.INFO), "%s", said.text(), extra={
            "refusals_not_logged": said.count, "refusals_by_status": {str(k): v for k, v in said.by_status.items()},
            "clients": said.clients, "top_client": said.top, "top_client_refusals": said.top_count})

    def _flush_later(self) -> None:
        """Make sure a timer will log the pending summary when it is due, should no refusal come by then (one
        timer at a time; none outside an event loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._timer is not None and self._timer_loop is loop:  # one of another loop (closed) never fires
            return
        if (due := self.lines.due_in(self._clock())) is not None:
            self._timer, self._timer_loop = loop.call_later(max(due, 0.05), self._on_timer), loop

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()
        self._flush_later()  # a summary not due yet (a clock read a little early), or one counted since


def shared(scope: Scope, limit: RateSettings | None) -> FailedAuth:
    """The app's one :class:`FailedAuth` (``app.state.failed_auth``, made on first use): the fast lane's gate and
    the app's share its buckets and log throttle. One of its own when ``scope`` has no app."""
    state = getattr(scope.get("app"), "state", None)
    found = getattr(state, "failed_auth", None)
    if not isinstance(found, FailedAuth):
        found = FailedAuth(limit)
        if state is not None:
            state.failed_auth = found
    return found
