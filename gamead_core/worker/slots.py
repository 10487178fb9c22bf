"""A worker's slots (:class:`SlotWatch`): how many analyses may start, and how the full pull loop waits for one.

* **Free slots** – ``worker.concurrency`` analyses run at once. An ad whose analysis succeeded and whose
  outcome is being written (its settle round, :mod:`gamead_core.worker.rounds`: a KV round trip) gives its slot
  to the next analysis meanwhile, for at most :data:`WRITING_PER_SLOT` × ``concurrency`` such ads at a time
  (beyond that its slot stays taken until it is written): the worker's CPU analyses while the writes are
  acknowledged, instead of idling with every slot waiting for its ack (issue 14.2). The ad stays held
  (heartbeat ``holding``, keep-alive, hand-back on shutdown) until its ack; nothing else about it changes.
* **Waiting** – one future, resolved by the ad that frees a slot, by the stop, or by a timeout (the prefetch
  buffer's stall), instead of ``asyncio.wait`` on every running task (a callback added to and removed from
  each of them per wait).
* **Pace** – :attr:`SlotWatch.pace`, the recent mean seconds an ad holds its slot, from :meth:`SlotWatch.took` to
  the slot given back (analysed, or ended), sizes the prefetch (:func:`~gamead_core.worker.prefetch.prefetch_depth`).
  Not until the outcome is written (a KV round trip, while the slot analyses the next ad): counted in, at a backlog
  it made the depth swing with the acks' delay, and each swing down handed buffered ads back (``nak``), every one
  delivered, pulled and read again (~5-15 % of a burn-down's ads; session 33).
"""

from __future__ import annotations

import asyncio
import time

from gamead_core.worker.prefetch import next_pace

#: Analysed ads per slot whose outcome writes may await their acks while their slots analyse others. At a backlog
#: a burn-down's writes are acknowledged a KV round trip (~1-2 ms) after they leave, while an analysis takes
#: ~0.25 ms: with 1 per slot the worker waited for acks with nothing to analyse at every 4th ad or so; 8 keep it
#: analysing (benchmarks/README.md, "The worker's machinery, branch w7"). A bound only while our storage is slow.
WRITING_PER_SLOT = 8


class SlotWatch:
    """The slots of a worker with ``concurrency`` of them, and at most ``writing`` (default
    :data:`WRITING_PER_SLOT` × ``concurrency``) analysed ads being written with their slots given back. One waiter
    at a time (the pull loop); :meth:`freed` may be called at any time, also with no waiter."""

    __slots__ = ("concurrency", "writing", "settling", "_waiter", "pace", "_took", "_timer")

    def __init__(self, concurrency: int, writing: int | None = None) -> None:
        self.concurrency = concurrency
        self.writing = concurrency * WRITING_PER_SLOT if writing is None else writing
        self.settling: set[object] = set()  #: ads analysed whose outcome is being written, slot given back
        self._waiter: asyncio.Future[bool] | None = None
        self.pace: float | None = None  #: recent mean seconds an ad holds its slot (None before one gave it back)
        self._took: dict[object, float] = {}  #: ad → time.monotonic() it took its slot (until it gives it back)
        #: (its loop, the timer armed for the earliest wait's timeout, kept across waits, when it fires)
        self._timer: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle, float] | None = None

    def free(self, running: int, *, blocked: bool = False) -> int:
        """Analyses that may start now, with ``running`` ads in hand (their tasks, settling ones included);
        none while ``blocked`` (a suspect ad runs alone, :class:`~gamead_core.worker.solo.SoloGate`)."""
        return 0 if blocked else self.concurrency - running + len(self.settling)

    def analysed(self, ad: object) -> bool:
        """``ad`` (its task) analysed, its outcome being written: its slot is free, unless ``writing`` ads are
        being written already. True when its slot was given back."""
        if len(self.settling) < self.writing:
            self.settling.add(ad)
            self._gave_back(ad)
            self.freed()
            return True
        return False

    def took(self, ad: object) -> None:
        """``ad`` took a slot now (its analysis starts): timed until it gives it back, for :attr:`pace`."""
        self._took[ad] = time.monotonic()

    def ended(self, ad: object) -> None:
        """``ad`` is settled (or handed back): its slot is free."""
        self.settling.discard(ad)
        self._gave_back(ad)
        self.freed()

    def _gave_back(self, ad: object) -> None:
        began = self._took.pop(ad, None)
        if began is not None:
            self.pace = next_pace(self.pace, time.monotonic() - began)

    def freed(self) -> None:
        """A slot freed (or the worker stops, or an ad reached an inbox: a full worker holds it): wake the waiter."""
        self._wake(True)

    def _wake(self, woke: bool) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(woke)

    async def wait(self, timeout: float | None) -> bool:
        """Until :meth:`freed` (True) or ``timeout`` seconds (None: no limit) passed (False), or earlier (False) when
        a timer an earlier wait armed fires first: a timer is kept across waits and armed again only for a wait
        that must end before it (drain46: the pull loop waits once per start step, each for about the buffer's
        stall, ~1 s; a timer made and cancelled per step was ~2 us of each ad's CPU at 4 slots). The caller looks
        again at what it waits for on any False."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        at, armed = (None if timeout is None else loop.time() + timeout), self._timer
        if at is not None and (armed is None or armed[0] is not loop or armed[2] > at):
            if armed is not None:
                armed[1].cancel()
            self._timer = (loop, loop.call_at(at, self._rang), at)
        try:
            return await waiter
        finally:
            self._waiter = None

    def _rang(self) -> None:
        self._timer = None
        self._wake(False)
