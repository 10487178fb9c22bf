"""Rate limits counted per item for requests that carry many (``POST /ads/batch``).

The gate (:mod:`gamead_core.api.middleware`) takes one token per request; a batch route instead finds a
:class:`RateQuota` in ``scope["state"]["rate_quota"]`` and takes one token per item from the caller's own
submit bucket, so a batch of 100 ads costs what 100 ``POST /ads`` cost and batching is never a way around
the limit. No quota in the scope means limits are off (one-machine mode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gamead_core.api.errors import RateLimited
from gamead_core.api.ratelimit import Decision, RateLimiter
from gamead_core.config import RateSettings


@dataclass(frozen=True, slots=True)
class RateQuota:
    """The caller's bucket (``bucket``/``who`` as the gate keys it) and its limit."""

    limiter: RateLimiter
    bucket: str
    who: str
    limit: RateSettings

    async def _hit(self, cost: int) -> Decision:
        if self.limiter.link is None:  # one machine: no await on the hot path
            return self.limiter.hit_local(self.bucket, self.who, rate=self.limit.rate, burst=self.limit.burst,
                                          cost=cost)
        return await self.limiter.hit(self.bucket, self.who, rate=self.limit.rate, burst=self.limit.burst,
                                      cost=cost)

    async def take(self, items: int) -> tuple[int, Decision]:
        """Take up to ``items`` tokens (``items`` ≥ 1): all of them if the bucket holds that many, else as many
        whole tokens as it holds. Returns (tokens taken, the decision of the last take); 0 taken means the
        request is refused as a whole (``decision.retry_after`` says when one token is back). At most two
        bucket updates (two Redis calls with a shared bucket)."""
        decision = await self._hit(items)
        if decision.allowed:
            return items, decision
        left = decision.remaining
        if left <= 0:
            return 0, decision
        partial = await self._hit(left)
        return (left, partial) if partial.allowed else (0, partial)

    def refused(self, decision: Decision, per: str = "") -> RateLimited:
        """The 429 of a :meth:`take` that took nothing (``decision``: its last); ``per`` says what counts, e.g.
        ``" (each ad of a batch counts)"``."""
        return RateLimited(
            f"rate limit exceeded: {self.limit.burst} ads at once, {self.limit.rate:g}/s sustained{per}; retry after "
            f"{max(1, math.ceil(decision.retry_after))}s",
            details={"limit": self.limit.burst, "rate": self.limit.rate, "retryAfter": round(decision.retry_after, 3)},
            headers={k.decode(): v.decode() for k, v in decision.headers()})
