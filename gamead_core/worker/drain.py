"""The worker's drain on shutdown (README "Graceful shutdown"): the ads in hand get ``worker.drain_timeout`` to
finish, the rest are cancelled (their handlers hand them back, refunded), then the shielded writes and acks are
waited for. Each await has its own bound (:func:`gamead_core.stop_bound.within`, fix35d)."""

from __future__ import annotations

import asyncio
import logging

from gamead_core.stop_bound import within
from gamead_core.worker.shield import Shield

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger, as before the split


async def drain(tasks: set[asyncio.Task[None]], abort: asyncio.Event, drain_timeout: float, shielded: Shield,
                request_timeout: float) -> None:
    """Wait up to ``drain_timeout`` s for ``tasks`` (the worker's: a set it keeps up to date; tasks added meanwhile
    are waited for too) unless ``abort`` is set; cancel what is left (given 1 s); then wait up to
    2 × ``request_timeout`` s for ``shielded``. A cut wait is named in a WARNING (``within``); never raises."""
    if tasks:
        log.info("draining", extra={"in_flight": len(tasks)})
        aborted = asyncio.ensure_future(abort.wait())
        deadline = asyncio.get_running_loop().time() + drain_timeout
        while tasks and not abort.is_set():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            await asyncio.wait({aborted, *tasks}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        aborted.cancel()
        pending = set(tasks)
        for task in pending:
            task.cancel()
        await within(asyncio.gather(*pending, return_exceptions=True), 1.0, "the cancelled analyses")  # fix35d
    await within(shielded.wait(), 2 * request_timeout, "the shielded settles (acks)")


__all__ = ["drain"]
