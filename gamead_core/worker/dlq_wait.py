"""An ad the full DLQ refused gives its slot back: ``queued`` again, its dead-lettering due, ``nak`` with a back-off.

Before (attack31a F5), an outcome the DLQ refused (``dlq.max_msgs`` reached, ``discard: new``) was retried in
its slot with the lease held for as long as the DLQ stayed full: as many failing ads as there are slots halted every
worker, urgent levels included, the log said "our storage is failing" and the records said ``processing`` for
minutes. One full destination must not stall the others. Now (:class:`DlqWait`):

* the record goes back to ``queued`` under this delivery (its attempts as charged: the budget is kept), ``error``
  a ``DlqFull`` naming the stream, the setting and what frees it, ``deadLetterError`` the failure it dies with,
  ``retryAt`` when it is tried again; then the message is ``nak``'ed with that delay and the slot is free;
* its next delivery sees ``deadLetterError`` and only tries the DLQ again (no analysis, no charge:
  :meth:`~gamead_core.worker.settle.Settler.give_up` with that error);
* the delay grows per worker while refusals follow each other (:data:`DLQ_BACKOFF` … :data:`DLQ_BACKOFF_CAP`),
  back to the start once the DLQ takes an entry; pulls never pause for it (the other ads flow);
* the worker says once that the DLQ is full (stream, limit, remedy), and once that it takes entries again; its
  ``lastError`` (``gamead workers``) names the DLQ; ``/v1/stats`` and ``gamead doctor`` say it from the stream.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from gamead_core.full_stores import DlqFull
from gamead_core.models import AdError, AdRecord, AdStatus, utcnow
from gamead_core.worker.backoff import backoff_ceiling
from gamead_core.worker.counters import WorkerStats

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger

#: Seconds before an ad the full DLQ refused is delivered again: first, and at most (doubling per refusal in a row)
DLQ_BACKOFF = 1.0
DLQ_BACKOFF_CAP = 30.0
#: ``error.errorClass`` of a record waiting for room in the DLQ
DLQ_FULL_CLASS = "DlqFull"


def parked(rec: AdRecord, attempt: AdRecord, failure: AdError, refusal: DlqFull, delay: float,
           owns: Callable[[AdRecord], bool]) -> AdRecord | None:
    """``rec`` (as read) after the DLQ refused the dead-lettering of ``attempt`` (the record as the attempt saw it)
    with ``failure``: ``queued`` under the attempt's delivery, charged as the attempt was, ``error`` the refusal,
    ``deadLetterError`` ``failure``, due in ``delay`` s. None when the ad is final or not the attempt's (``owns``).
    Pure."""
    if rec.status.terminal or not owns(rec):
        return None
    now = utcnow()
    return rec.model_copy(update={
        "status": AdStatus.QUEUED,
        "attempts": max(rec.attempts, attempt.attempts),
        "delivery": attempt.delivery, "worker_id": attempt.worker_id, "started_at": attempt.started_at,
        "error": AdError(error_class=DLQ_FULL_CLASS, message=f"{failure.error_class} not dead-lettered yet: "
                         f"{refusal.message}", retryable=True, at=now),
        "dead_letter_error": failure,
        "first_failure_at": rec.first_failure_at or failure.at,
        "retry_at": now + timedelta(seconds=delay),
        "suspect": None,
    })


class DlqWait:
    """The full-DLQ state of one worker: the back-off and the two log lines (module doc)."""

    def __init__(self, stats: WorkerStats, worker_id: str) -> None:
        self._stats = stats
        self._worker_id = worker_id
        self._refusals = 0  #: refusals in a row (0: the DLQ takes entries)

    def delay(self) -> float:
        """Seconds the next refused ad waits (the ``nak`` delay)."""
        return backoff_ceiling(max(1, self._refusals), base=DLQ_BACKOFF, cap=DLQ_BACKOFF_CAP)

    def refused(self, refusal: DlqFull) -> float:
        """Note a refusal; returns the delay for the ad it refused."""
        if not self._refusals:
            log.warning("%s; until then ads that fail for good wait queued (their dead-lettering retried with "
                        "back-off, no attempt charged) and every other ad is analysed as usual", refusal.message,
                        extra={"worker_id": self._worker_id})
        self._refusals += 1
        self._stats.last_error = f"dlq_full: {refusal.message}"
        return self.delay()

    def took(self) -> None:
        """The DLQ took an entry: the back-off starts again."""
        if self._refusals:
            log.info("the DLQ takes entries again: ads waiting for it are dead-lettered as they come back",
                     extra={"worker_id": self._worker_id})
        self._refusals = 0

    async def park(self, write: Callable[[Callable[[AdRecord], AdRecord | None]], Awaitable[bool]],
                   attempt: AdRecord, failure: AdError, refusal: DlqFull,
                   owns: Callable[[AdRecord], bool]) -> tuple[bool, float]:
        """Write the :func:`parked` record through ``write(change)`` (the settler's compare-and-set loop, retried
        while our storage fails). Returns (written, the ``nak`` delay)."""
        delay = self.refused(refusal)
        written = await write(lambda rec: parked(rec, attempt, failure, refusal, delay, owns))
        if written:
            log.info("ad %s: the DLQ is full; queued again, its dead-lettering retried in %.1fs", attempt.id, delay,
                     extra={"ad_id": attempt.id})
        return written, delay
