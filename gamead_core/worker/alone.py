"""A suspect ad runs alone at the queue too (lastmoments51): before its attempt its worker has no pull request at
nats-server or under way, and every ad those delivered is held and announced, at the server (:mod:`.confirm`).

A suspect ad may crash its worker (a poison ad runs alone each time until it ends dead). While it waits and runs,
its gate (:class:`~.solo.SoloGate`) leaves the pull loop no free slot, so the worker sends no new pull; but the long
polls placed before (one per (level, partition), living ``queue.idle_wait`` at the server; a pull puts them back as
it takes its ads, the suspect one's included) still take what is published meanwhile. An ad one delivered in the
last millisecond before the crash was never read, so never announced (registry ``holding``): no recovery could hand
it back, and it waited the consumer's ``ack_wait`` (the crash-loop test, ~3 in 21 runs at load 25, 300 s there;
tests/integration/test_alone_at_queue.py holds that moment open).

:func:`alone_at_queue` waits, before the attempt, until (:meth:`QueueSide.still`)

* every long poll of the worker was answered (an ad, or 408 at its expiry; or unanswered :data:`POLL_MARGIN` past
  its expiry: gone with a restarted server),
* no pull of the pull loop is under way (:attr:`QueueSide.pulling`, set by the loop from its pull until the start
  step of what that brought ended; the gate keeps it from sending another until the suspect ad has settled). Not
  "the loop waits for a slot" (alone52): a worker told quiet or draining parks its loop elsewhere, and its suspect
  ad waited the whole bound and said so in a false WARNING,
* no inbox holds an ad (the loop holds them at once, :mod:`gamead_core.queue.inbox`; one that came while it was busy
  holding others missed its wake-up, and is woken for here),

then announces what the worker holds and waits for nats-server's ``PING`` answer (:func:`.confirm.confirm_held`): a
delivery made before it is read by then, and looked for again. That takes up to about one long poll's life (the
worker's ``queue.idle_wait``; 5 s at the defaults); past it and :data:`MARGIN` more the worker says so and the
attempt goes on, as before. Suspect ads are rare (only after a crash) and ordinary ones pay a bool set and cleared
per pull: the wait looks every :data:`STEP` s instead of hooking into the long polls' and slots' hot paths.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NATS

from gamead_core.queue.long_poll import POLL_MARGIN, LongPolls
from gamead_core.queue.pull import AgingPuller
from gamead_core.worker.confirm import confirm_held
from gamead_core.worker.held import HeldAds
from gamead_core.worker.slots import SlotWatch

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger

#: Seconds between two looks at the queue side while a suspect ad waits to start
STEP = 0.02
#: Seconds past the last long poll's life (and :data:`POLL_MARGIN`) the wait goes on, for the loop to park
MARGIN = 2.0


def queue_bound(idle_wait: float) -> float:
    """Longest wait (s) for a worker's long polls to end, for long polls living ``idle_wait`` s
    (``queue.idle_wait``): their life, :data:`POLL_MARGIN` and :data:`MARGIN`. Pure."""
    return idle_wait + POLL_MARGIN + MARGIN


class QueueSide:
    """A worker's queue side, as a suspect ad's start looks at it: its ``slots`` (a wake-up for the pull loop), its
    ``puller`` (None before the worker made it) and :attr:`pulling`. The pull loop wraps its pull and the start
    step of what it brought in ``with side:`` (a bool set and cleared: no task, future or lock)."""

    __slots__ = ("_slots", "_puller", "pulling")

    def __init__(self, slots: SlotWatch, puller: Callable[[], AgingPuller | None]) -> None:
        self._slots, self._puller = slots, puller
        self.pulling = False  #: a pull of the loop's is under way, or the start step of what it brought

    def __enter__(self) -> None:
        self.pulling = True

    def __exit__(self, *exc: object) -> None:
        self.pulling = False

    def _polls(self) -> LongPolls | None:
        puller = self._puller()
        return None if puller is None else puller.polls

    @property
    def bound(self) -> float:
        """Longest wait (s) for :meth:`still`: a long poll's life, :data:`POLL_MARGIN` and :data:`MARGIN`."""
        polls = self._polls()
        return queue_bound(0.0 if polls is None else polls.idle_wait)

    def still(self) -> bool:
        """True when the worker has no pull request at the server or under way and no ad waits in an inbox."""
        if (polls := self._polls()) is None:
            return True
        if next(polls.unstarted(), None) is not None:
            self._slots.freed()  # the loop holds it (a wake-up it missed while it was holding others)
            return False
        return not self.pulling and not polls.live()

    async def settle(self, until: float) -> bool:
        """Wait until :meth:`still` (True), or ``until`` (monotonic s) passed (False)."""
        while not self.still():
            if time.monotonic() >= until:
                return False
            await asyncio.sleep(STEP)
        return True


async def alone_at_queue(held: HeldAds, announce: Callable[[], Awaitable[None]], nc: NATS | None, timeout: float,
                         queue: QueueSide | None, ad_id: str) -> None:
    """Before suspect ad ``ad_id``'s attempt: its worker alone at the queue (``queue``, :meth:`QueueSide.settle`;
    None: not looked at), then what it holds at the server (:func:`confirm_held`, ``timeout`` s for the ``PING``),
    again while the queue side stirred meanwhile (a late answer to a pull), for :attr:`QueueSide.bound` s at most
    (not settled by then: said). The attempt goes on either way, as when NATS did not answer the ``PING``."""
    if queue is None:
        await confirm_held(held, announce, nc, timeout)
        return
    began = time.monotonic()
    until = began + queue.bound
    while await queue.settle(until):
        if not await confirm_held(held, announce, nc, timeout) or queue.still():
            return
    log.warning("ad %s runs alone while this worker may still be given ads (a long poll unanswered, or a pull of its "
                "under way, after %.1fs): one delivered as it crashes comes back after ack_wait",
                ad_id, time.monotonic() - began, extra={"ad_id": ad_id})
    await confirm_held(held, announce, nc, timeout)


__all__ = ["MARGIN", "QueueSide", "STEP", "alone_at_queue"]
