"""The worker's drain on shutdown (README "Graceful shutdown"): the ads in hand get ``worker.drain_timeout`` to
finish, the rest are cancelled (their handlers hand them back, refunded), then the shielded writes and acks are
waited for. Each await has its own bound (:func:`gamead_core.stop_bound.within`, fix35d). The shielded writes (a
refund our storage failed, retried: :func:`gamead_core.worker.give_back.give_back`) and the clean stop's delete mark
and note (:func:`gamead_core.registry.beat.run_heartbeat`) are waited for / tried until :class:`LastWrites` says,
2 s of it kept for the mark: NATS away at the stop and back within it (attack44b F2: both cut 4 s and 2 s into the
stop, the process then exited before NATS was back, 5.5 s into its 22 s bound, and its running ad was charged).

That wait's deadline ends the wait, never the writes (reap45: it cancelled every shielded write and ack still
running, e.g. a settle round between its record write and its ack, whose ad was then redelivered): they run on
through the rest of the stop (the clean stop's mark and note, the NATS drain, whose close fails what is still
unanswered) and a WARNING names their ads (field ``ads``). One not ended leaves its ad as the last write that landed
says: a record written but not acknowledged is redelivered after ``ack_wait`` and acknowledged as final, unanalysed;
a record not written is analysed again (its attempt charged, as for a stop cut by SIGKILL)."""

from __future__ import annotations

import asyncio
import logging

from gamead_core.registry.beat import LAST_FOR
from gamead_core.stop_bound import last_writes_until, within
from gamead_core.worker.shield import Shield

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger, as before the split


class LastWrites:
    """When a worker's stop began, and so until when its last writes are tried
    (:func:`~gamead_core.stop_bound.last_writes_until`, ``drain_timeout``: ``worker.drain_timeout`` s)."""

    def __init__(self, drain_timeout: float) -> None:
        self.drain_timeout = drain_timeout
        self.until: float | None = None  #: the event loop's clock (s); None: the stop has not begun
        self.silent = False  #: NATS did not answer as the stop began: each last write is tried once (:meth:`give_up`)

    def begin(self) -> None:
        """The stop begins now (the first call counts)."""
        if self.until is None:
            self.until = last_writes_until(asyncio.get_running_loop().time(), self.drain_timeout)

    def give_up(self) -> None:
        """The stop begins now with NATS silent (:mod:`gamead_core.worker.nats_silent`): no time left for retries."""
        self.silent = True
        self.until = asyncio.get_running_loop().time()

    def left(self) -> float:
        """Seconds left for the last writes (:data:`~gamead_core.registry.beat.LAST_FOR` before the stop began)."""
        return LAST_FOR if self.until is None else self.until - asyncio.get_running_loop().time()


async def drain(tasks: set[asyncio.Task[None]], abort: asyncio.Event, writes: LastWrites, shielded: Shield,
                request_timeout: float) -> None:
    """Wait up to ``writes.drain_timeout`` s for ``tasks`` (the worker's: a set it keeps up to date; tasks added
    meanwhile are waited for too) unless ``abort`` is set; cancel what is left (given 1 s); then wait for
    ``shielded`` 2 × ``request_timeout`` s, or longer while ``writes`` leaves more than :data:`LAST_FOR` s beyond
    (the module doc), then leave those still running (a WARNING names their ads). A cut wait for the cancelled
    analyses is named in a WARNING (``within``); never raises."""
    writes.begin()
    drain_timeout = writes.drain_timeout
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
    wait = max(2 * request_timeout, writes.left() - LAST_FOR)
    if left := await shielded.wait(wait):  # never cut: they run on while the stop goes on (the module doc)
        ads = shielded.ads()
        log.warning("stopping: %d shielded writes and acks still running after %.1f s (%d ads: %s), left running while "
                    "the stop goes on; an ad whose write or ack does not land before NATS is closed comes back after "
                    "ack_wait", left, wait, len(ads), ", ".join(ads[:10]) + (" …" if len(ads) > 10 else ""),
                    extra={"ads": ads, "still_running": left})


__all__ = ["LastWrites", "drain"]
