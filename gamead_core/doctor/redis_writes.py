"""Whether the API node's Redis takes writes (attack28a F1): ``redis_unwritable``, a warning-level finding.

A full Valkey (``maxmemory`` with ``noeviction``) or a read-only replica answers ``PING`` and reads while it
refuses every write; an unreachable one takes nothing. Ads still flow either way (Redis is never the source of
truth), but the README's shared rate limits and the record cache do not hold meanwhile, so the doctor says so.
The probe is the node's own health check (:meth:`gamead_core.redis_link.RedisLink.write_probe`, past the
breaker: the calls traffic makes, the rate limits' script and a cache write, review28 R1), looked at twice
``settle`` seconds apart like every finding: a refusal that has passed is not said.
"""

from __future__ import annotations

import asyncio

from gamead_core.redis_link import RedisLink


def unwritable_line(reason: str) -> str:
    """The finding's detail for Redis's ``reason`` (``out of memory``, ``read-only (a replica)``, ``timed out``,
    ``permission denied for the rate limits (…)``…).
    Pure."""
    return (f"a write to Redis fails: {reason}; meanwhile every API node counts rate limits on its own (a client "
            "gets the limit once per node) and reads records from NATS without the cache")


async def check(link: RedisLink | None, settle: float) -> dict[str, str]:
    """Item → detail: ``{"redis": …}`` when a write failed twice, ``settle`` seconds apart; ``{}`` when it was
    stored or no Redis is configured (``link`` None). Never raises a Redis error."""
    if link is None:
        return {}
    if await link.write_probe() is None:
        return {}
    await asyncio.sleep(settle)
    failure = await link.write_probe()
    return {} if failure is None else {"redis": unwritable_line(failure.describe(link.host))}


__all__ = ["check", "unwritable_line"]
