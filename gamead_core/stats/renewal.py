"""Re-read before judging: an answer that judges other nodes by the sampler's memory renews it first when the
sampler did not (newcomer33 F4).

The sampler reads the queue and the registry once per ``interval``; an answer ages what it read by this process's
clock (a heartbeat read 0.4 s ago, 2.5 beats old: ``late``). When this process itself stood still — SIGSTOP, a
suspended VM, an event loop blocked for seconds — its newest reading is as old as the pause, and the first answers
after it aged every node by the pause: every worker ``late`` (``stuck`` past ``registry.ttl``) and every level's
oldest ad older by the pause, for one read, though they all beat meanwhile; the pause was this process's, not
theirs. A reading that the sampler did renew but could not (NATS unreachable: a disconnected sample) is left as
it is: nodes nobody can see do age (:func:`gamead_core.stats.document._state`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gamead_core.stats.sampler import QueueSampler

log = logging.getLogger(__name__)

#: a connected sample older than this many sampler intervals was not renewed by the sampler: this process did not
#: run (a tick is ``interval`` apart; one more interval for a slow read)
STALE_INTERVALS = 2.0


def is_stale(sampler: Any, now: float) -> bool:
    """Is the sampler's newest sample a connected one older than :data:`STALE_INTERVALS` of its intervals at
    ``now`` (epoch seconds, the sampler's clock)? None taken yet, or NATS unreachable at the last: False. Pure."""
    last = sampler.latest
    return last is not None and last.reading.connected and now - last.t > STALE_INTERVALS * sampler.interval


async def renew_if_stale(sampler: QueueSampler, timeout: float) -> None:
    """Take a sample now if the newest is stale (:func:`is_stale`), waiting for it at most ``timeout`` seconds
    (then the answer is judged on what is in memory); concurrent callers share one sample, and a tick of the
    sampler's own that renewed it meanwhile makes it none. Never raises (a sample's error is the sampler's to
    report, in its ``errors``)."""
    if not is_stale(sampler, sampler.clock()):
        return
    task = sampler.renewing
    if task is None or task.done():
        task = sampler.renewing = asyncio.ensure_future(sampler.sample(only_if_stale=True))
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=timeout)
    except asyncio.TimeoutError:
        log.debug("stats: the renewed sample took over %.1f s: answering from memory", timeout)
    except Exception as exc:  # noqa: BLE001 - answered from memory; the sampler's own tick says what failed
        log.debug("stats: the renewed sample failed: %r", exc)


__all__ = ["STALE_INTERVALS", "is_stale", "renew_if_stale"]
