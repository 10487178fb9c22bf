"""The ``processing`` mark of a long analysis: written only once the analysis has run ``worker.processing_mark_after``
seconds (issue 14.2: a short analysis costs one record write, its outcome).

Where the line is: an analysis that ends within ``processing_mark_after`` (default 0.5 s) goes from ``queued`` to
``completed`` in one KV write; one that runs longer is marked ``processing`` (charged, naming its delivery and
worker) by a timer started with it, so ``gamead ads``, ``GET /ads/{id}`` and ``gamead top`` show it, and the
outcome then compares-and-sets over the mark's revision. The timer is cancelled if the analysis ends first.
"""

from __future__ import annotations

import asyncio
import logging

from gamead_core.errors import Conflict, GameadError
from gamead_core.store.ads import Versioned
from gamead_core.worker.settle import Settler

log = logging.getLogger(__name__)


class ProcessingMark:
    """One attempt's delayed mark. ``current`` is the :meth:`Settler.started` record over the revision it
    was read at; :meth:`stop` returns what the outcome must compare-and-set over (the mark, if it was written)."""

    def __init__(self, settle: Settler, current: Versioned, after: float) -> None:
        self._settle = settle
        self.current = current
        self.marked = False
        self._writing = False
        self._task = asyncio.create_task(self._run(after))

    async def _run(self, after: float) -> None:
        await asyncio.sleep(after)
        self._writing = True
        try:
            self.current = await self._settle.mark(self.current)
            self.marked = True
        except Conflict:  # the record changed under us (a recovery, an operator): the outcome's CAS decides
            log.debug("ad %s changed during its analysis; not marked", self.current.record.id)
        except GameadError as exc:  # our storage failed: the heartbeat's held flag still charges a crash
            log.debug("ad %s: could not mark it processing: %s", self.current.record.id, exc.message)
        except Exception as exc:  # noqa: BLE001 - the mark is for operators; the analysis goes on
            log.warning("ad %s: could not mark it processing: %r", self.current.record.id, exc)

    async def stop(self) -> Versioned:
        """End the timer: cancelled if it is still waiting, else waited for (its write is shielded)."""
        if not self._writing:
            self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            if self._writing:  # we were cancelled ourselves (a shutdown) while the mark was being written
                raise
        return self.current
