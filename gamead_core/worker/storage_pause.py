"""When our own storage (JetStream) fails, the worker pauses its pulls with back-off instead of failing ads.

Our storage failing is never the ad's fault: a delivery that cannot start is handed back uncharged after the
pause, and an outcome that cannot be written is retried (lease held) until storage answers. The pause grows
as :func:`~gamead_core.worker.backoff.backoff_ceiling` (``STORAGE_BACKOFF`` … ``STORAGE_BACKOFF_CAP``) once
per round of failures, not once per failed ad; the outage is logged when it starts and when it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from gamead_core.errors import GameadError, QueueFull, QueueUnavailable
from gamead_core.full_stores import DlqFull
from gamead_core.worker.backoff import backoff_ceiling

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Back-off after our storage failed: first and largest pause (seconds) before pulling again.
STORAGE_BACKOFF = 0.5
STORAGE_BACKOFF_CAP = 5.0
#: Errors that mean our own storage (JetStream) failed, not the ad.
STORAGE_ERRORS = (QueueUnavailable, QueueFull)


class _Counters(Protocol):
    storage_failures: int
    last_error: str | None


class StoragePause:
    """The storage-failure back-off of one worker. ``paused_for()``: seconds before the next pull may run."""

    def __init__(self, stats: _Counters) -> None:
        self._stats = stats
        self._rounds = 0  #: consecutive rounds of failure (0: storage answers)
        self._until = 0.0  #: loop time: no pulls before

    def paused_for(self) -> float:
        return max(0.0, self._until - asyncio.get_running_loop().time())

    def failed(self, exc: GameadError) -> float:
        """Note a storage failure; returns the seconds before trying again. Pulls pause as long."""
        self._stats.storage_failures += 1
        self._stats.last_error = f"storage: {exc.message}"
        now = asyncio.get_running_loop().time()
        if now < self._until:  # another ad of the same round
            return self._until - now
        if not self._rounds:
            log.warning("our storage is failing (%s): ads are handed back uncharged and pulls pause, retrying "
                        "with back-off", exc.message)
        self._rounds += 1
        pause = backoff_ceiling(self._rounds, base=STORAGE_BACKOFF, cap=STORAGE_BACKOFF_CAP)
        self._until = now + pause
        return pause

    def ok(self) -> None:
        if self._rounds:
            log.info("storage answers again")
        self._rounds = 0

    async def persist(self, write: Callable[[], Awaitable[T]], shielded: Callable[[Awaitable[T]], Awaitable[T]],
                      stalled: Callable[[], Awaitable[object]] | None = None) -> T:
        """Run ``write`` (through ``shielded``) until our storage takes it; the ad's lease is held meanwhile. A full
        DLQ (:class:`DlqFull`) is not our storage failing: raised at once (attack31a F5).
        ``stalled`` (optional) runs once, after the first failure (e.g. mark the record ``processing`` so the
        wait shows); what it raises is ignored."""
        while True:
            try:
                result = await shielded(write())
            except DlqFull:  # one full destination, not our storage: the caller gives the slot back (dlq_wait)
                raise
            except STORAGE_ERRORS as exc:
                if stalled is not None:
                    try:
                        await stalled()
                    except Exception as why:  # noqa: BLE001 - only a courtesy to operators
                        log.debug("could not mark a stalled outcome: %r", why)
                    stalled = None
                delay = self.failed(exc)
                log.debug("cannot record an outcome (%s); retrying in %.1fs", exc.message, delay)
                await asyncio.sleep(delay)
                continue
            self.ok()
            return result
