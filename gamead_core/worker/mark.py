"""The ``processing`` mark of a long analysis: written only once the analysis has run ``worker.processing_mark_after``
seconds (issue 14.2: a short analysis costs one record write, its outcome).

Where the line is: an analysis that ends within ``processing_mark_after`` (default 0.5 s) goes from ``queued`` to
``completed`` in one KV write; one that runs longer is marked ``processing`` (charged, naming its delivery and
worker) by a timer started with it, so ``gamead ads``, ``GET /ads/{id}`` and ``gamead top`` show it, and the
outcome then compares-and-sets over the mark's revision. The timer is cancelled if the analysis ends first.

A mark that finds the record claimed by a later delivery of the ad (the message was redelivered before the mark:
ack_wait passed with its in-progress acks held up, e.g. the worker stalled) stops the analysis (its task cancelled):
its outcome could never be written, and the later delivery runs the ad. Before stall38 it ran to its end beside it
(two analyses, one outcome: ``tests/integration/test_mark_superseded.py``). Found only where the mark's write
already failed its compare-and-set: one record read, nothing on the common path.
"""

from __future__ import annotations

import asyncio
import logging

from gamead_core.errors import Conflict, GameadError
from gamead_core.store.ads import Versioned
from gamead_core.worker.budget import superseded
from gamead_core.worker.settle import Settler
from gamead_core.worker.timers import Deadlines

log = logging.getLogger(__name__)


class ProcessingMark:
    """One attempt's delayed mark. ``current`` is the :meth:`Settler.started` record over the revision it
    was read at; :meth:`stop` returns what the outcome must compare-and-set over (the mark, if it was written).
    A deadline on the worker's one mark timer until it fires (``deadlines``: a
    :class:`~gamead_core.worker.timers.Deadlines` of ``worker.processing_mark_after``; no task or timer handle
    per ad: most analyses end first); the write is a task of its own."""

    def __init__(self, settle: Settler, current: Versioned, deadlines: Deadlines) -> None:
        self._settle = settle
        self.current = current
        self.marked = False
        self._task: asyncio.Task[None] | None = None
        self._deadlines = deadlines
        self._analysis = asyncio.current_task()  #: stopped if a later delivery claimed the ad (the module doc)
        deadlines.add(self, self._fire)

    def _fire(self) -> None:
        self._task = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        try:
            self.current = await self._settle.mark(self.current)
            self.marked = True
        except Conflict:  # the record changed under us (a recovery, an operator): the outcome's CAS decides
            log.debug("ad %s changed during its analysis; not marked", self.current.record.id)
            await self._superseded()
        except GameadError as exc:  # our storage failed: the heartbeat's held flag still charges a crash
            log.debug("ad %s: could not mark it processing: %s", self.current.record.id, exc.message)
        except Exception as exc:  # noqa: BLE001 - the mark is for operators; the analysis goes on
            log.warning("ad %s: could not mark it processing: %r", self.current.record.id, exc)

    async def _superseded(self) -> None:
        """After a mark lost its compare-and-set: stop the analysis if a later delivery claimed the ad."""
        mine = self.current.record
        try:
            now = (await self._settle.store.get(mine.id)).record
        except GameadError:
            return  # unreadable now: the outcome's compare-and-set decides
        if superseded(now, mine.delivery or "") and self._analysis is not None and not self._analysis.done():
            log.info("ad %s: a later delivery (%s) runs it since its message was redelivered: this analysis under %s "
                     "is stopped (its outcome could not be written)", mine.id, now.delivery, mine.delivery,
                     extra={"ad_id": mine.id})
            self._analysis.cancel()

    async def stop(self) -> Versioned:
        """End the timer: cancelled if it has not fired, else its write waited for (the write is shielded)."""
        self._deadlines.remove(self)
        if self._task is not None:
            await self._task
        return self.current
