"""Failed authentication: bounded token guessing and bounded log lines (attack28a F6).

With auth required and rate limits on, a request without a valid token (none, or a wrong one) takes one token
from its client address's bucket: the anonymous limit (``ratelimit.rate`` / ``ratelimit.burst``, bucket ``api``,
key ``ip:<address>``), shared by every API node through Redis like every other limit, per node without it. The
401 it gets carries the ``X-RateLimit-*`` headers. Past the limit the answer is 429 ``rate_limited`` with
``Retry-After``, and until then every request from that address is answered 429 *before its token is looked
at* (:class:`Lockouts`, per node, no I/O): a guesser gets one answer per token of the bucket (plus at most one
per API node as each lock runs out), so guessing runs at ``ratelimit.rate`` per address at most.

A valid token is charged to its own bucket only: nothing of others' failures. But a valid token sent from an
address while that address is locked out is answered 429 too (it is not compared: an answer that told it apart
would be the oracle the lock removes); behind one shared (NAT) address, a client sending wrong tokens holds the
others back for as long as it keeps at it (each lock lasts until one token has refilled, ``1 / ratelimit.rate``
seconds).

The 401, 403 and these 429 log lines are throttled per client address and status
(:class:`~gamead_core.log_throttle.Throttle`: one line of each every :data:`LOG_EVERY` seconds, the next one saying
``N more refused from <address>``; a 403 naming a valid token is not hidden behind a flood of 401s), rate limits
on or off; every refusal is still counted in ``gamead_http_requests_total``. The audit trail records no 401 (no
caller is known) and throttles 403s per caller (``audit.refusals_per_minute``).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gamead_core.api.errors import error_response
from gamead_core.api.ratelimit import Decision, RateLimiter
from gamead_core.config import RateSettings
from gamead_core.log_throttle import Throttle

#: the gate's logger: the refusal lines keep the logger name they always had
log = logging.getLogger("gamead_core.api.middleware")

#: seconds between two logged refusal lines of one client address
LOG_EVERY = 5.0
#: (address, status) pairs whose log lines are throttled at once (the least recent is forgotten: its next line is
#: logged)
LOG_ADDRESSES = 4096
#: the bucket failed authentications are charged to (the anonymous callers' one), keyed ``ip:<address>``
BUCKET = "api"


class Lockouts:
    """Client addresses refused without a look at their token until a time (pure: the caller passes ``now``,
    monotonic seconds). Bounded: beyond ``max_keys`` the oldest lock is forgotten (that address's next request is
    compared and charged again, which re-locks it if its bucket is still empty)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._max = max_keys
        self._until: OrderedDict[str, tuple[float, Decision]] = OrderedDict()  # address → (locked until, refusal)

    def lock(self, address: str, now: float, refused: Decision) -> None:
        """Lock ``address`` for ``refused.retry_after`` seconds from ``now`` (``refused``: the bucket's 429)."""
        self._until[address] = (now + refused.retry_after, refused._replace(reset=now + refused.reset))
        self._until.move_to_end(address)
        while len(self._until) > self._max:
            self._until.popitem(last=False)

    def check(self, address: str, now: float) -> Decision | None:
        """The 429 decision for ``address`` while it is locked (``Retry-After`` counting down), else None."""
        found = self._until.get(address)
        if found is None:
            return None
        until, refused = found
        if now >= until:
            del self._until[address]
            return None
        return refused._replace(retry_after=until - now, reset=max(refused.reset - now, until - now))

    def __len__(self) -> int:
        return len(self._until)


class FailedAuth:
    """What the gate does with a request that failed authentication (see the module docstring). ``limit``: the
    anonymous limit, None when rate limits are off (then only the log lines are throttled)."""

    def __init__(self, limit: RateSettings | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.locks = Lockouts()
        self.lines = Throttle(every=LOG_EVERY, max_kinds=LOG_ADDRESSES)
        self._clock = clock

    def locked(self, address: str) -> Decision | None:
        """The 429 decision when ``address`` is locked out (no I/O: asked before any token is compared)."""
        if self.limit is None or not self.locks:  # the usual case: nobody locked out, no clock read
            return None
        return self.locks.check(address, self._clock())

    async def charge(self, limiter: RateLimiter, address: str) -> Decision | None:
        """Take one token from ``address``'s anonymous bucket for a failed authentication; lock the address when
        the bucket had none. None when rate limits are off."""
        if self.limit is None:
            return None
        rate, burst = self.limit.rate, self.limit.burst
        if limiter.link is None:
            decision = limiter.hit_local(BUCKET, f"ip:{address}", rate=rate, burst=burst)
        else:
            decision = await limiter.hit(BUCKET, f"ip:{address}", rate=rate, burst=burst)
        if not decision.allowed:
            self.locks.lock(address, self._clock(), decision)
        return decision

    async def refuse(self, scope: Scope, receive: Receive, send: Send, decision: Decision) -> None:
        """Answer 429 ``rate_limited`` to a client address over its failed-authentication limit (``decision``:
        the bucket's or the lock's); the log line is throttled per address like the 401s."""
        address = str(scope["client"][0]) if scope.get("client") else "unknown"
        self.log_refusal(logging.INFO, address, "refused: 429 rate_limited (too many requests without a valid "
                         "token from this address) %s %s", scope["method"], scope["path"], status=429)
        await self.answer(decision)(scope, receive, send)

    def answer(self, decision: Decision) -> Response:
        """The 429 ``rate_limited`` answer of an address over its failed-authentication limit."""
        assert self.limit is not None
        retry = max(1, int(-(-decision.retry_after // 1)))
        response = error_response(
            429, "rate_limited",
            f"too many requests without a valid API token from this client address: {self.limit.burst} at once, "
            f"{self.limit.rate:g}/s sustained (ratelimit.burst, ratelimit.rate); retry after {retry}s",
            {"limit": self.limit.burst, "rate": self.limit.rate,
             "retryAfter": float(f"{decision.retry_after:.3f}")},
            None,
        )
        response.raw_headers.extend(decision.headers())
        return response

    def log_refusal(self, level: int, address: str, message: str, *args: object, **extra: object) -> None:
        """Log one refusal line (``message % args``, with ``client`` and ``extra`` as fields: ``status`` among
        them), at most one per ``address`` and status every :data:`LOG_EVERY` seconds; the next one logged says
        how many were left out."""
        left_out = self.lines.allow(f"{extra.get('status')} {address}", self._clock())
        if left_out is None:
            return
        if left_out:
            message += " (%d more refused from %s since the last such line, not logged)"
            args = (*args, left_out, address)
            extra["refusals_not_logged"] = left_out
        log.log(level, message, *args, extra={"client": address, **extra})


def shared(scope: Scope, limit: RateSettings | None) -> FailedAuth:
    """The app's one :class:`FailedAuth` (``app.state.failed_auth``, made on first use): the fast lane's gate and
    the app's share its locks and log throttle. One of its own when ``scope`` has no app."""
    state = getattr(scope.get("app"), "state", None)
    found = getattr(state, "failed_auth", None)
    if not isinstance(found, FailedAuth):
        found = FailedAuth(limit)
        if state is not None:
            state.failed_auth = found
    return found
