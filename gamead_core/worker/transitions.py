"""The record changes of an attempt, as pure functions of the record read (no I/O): the record an attempt
starts from, who still owns the ad, the ``queued``-with-backoff record of a retry, and the record of a shutdown
hand-back.
:class:`~gamead_core.worker.settle.Settler` writes what they answer with a compare-and-set (or
``AdStore.mutate``), so each may run again on a record that changed meanwhile; ``None`` means "not ours:
write nothing"."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta

from gamead_core.models import AdError, AdRecord, AdStatus, utcnow
from gamead_core.worker.budget import lost_attempt, parse_delivery, superseded


def started_record(rec: AdRecord, delivery: str, worker_id: str, suspect: bool = False,
                   at: datetime | None = None) -> AdRecord:
    """``rec`` as the attempt under ``delivery`` sees it: ``processing`` by ``worker_id`` since ``at`` (None: now),
    one attempt charged, ``suspect`` if asked, already so, or the attempt it follows was lost (:func:`lost_attempt`)."""
    return rec.model_copy(update={
        **attempt_fields(rec, delivery, worker_id, utcnow() if at is None else at),
        "status": AdStatus.PROCESSING,
        "suspect": True if (suspect or rec.suspect or lost_attempt(rec, delivery)) else None,
    })


def attempt_fields(rec: AdRecord, delivery: str, worker_id: str, at: datetime) -> dict[str, object]:
    """The fields an attempt under ``delivery`` by ``worker_id`` begun at ``at`` sets on ``rec`` (its start, one
    attempt charged, who, which delivery), by their attribute names: :func:`started_record`'s, and those the batch
    start's completed bytes carry without building that record (:func:`~.completed_json.completed_bytes_of`)."""
    return {"started_at": at, "attempts": rec.attempts + 1, "worker_id": worker_id, "delivery": delivery}


def owner(delivery: str) -> Callable[[AdRecord], bool]:
    """``owns(record)``: the record is still this attempt's own: ``processing`` under ``delivery`` (a marked
    attempt), or not final, not ``processing`` and naming only earlier deliveries (an attempt that ran
    unmarked, the fast path: nobody has claimed the ad since it was read)."""

    def owns(rec: AdRecord) -> bool:
        if rec.status == AdStatus.PROCESSING:
            return rec.delivery == delivery
        return not rec.status.terminal and parse_delivery(rec.delivery) < parse_delivery(delivery)

    return owns


def recovered(record: AdRecord, delivery: str, worker_id: str) -> bool:
    """Whether ``record`` (read now) says that ``delivery`` of its ad is no longer run by this process (worker
    ``worker_id``): a later delivery claimed it, or a recovery of this process took it back (``lostIn`` naming this
    process, :func:`~gamead_core.worker.reaper.death_id`, the ad ``queued``, the delivery the recovery settled not
    earlier than ``delivery``: a redelivery this process took after the recovery is its own — left39b: it was
    stopped too, and the ad waited ``queue.ack_wait`` and was charged 3 attempts for one analysis). Pure but for
    the PID."""
    lost_in = record.lost_in
    return superseded(record, delivery) or (lost_in is not None and record.status == AdStatus.QUEUED
                                            and lost_in.startswith(f"{worker_id}:{os.getpid()}@")
                                            and parse_delivery(record.delivery) >= parse_delivery(delivery))


def completing(rec: AdRecord, done: AdRecord, delivery: str, worker_id: str | None = None) -> AdRecord | None:
    """The completed record ``done`` of the attempt under ``delivery``, to write over ``rec`` (the record now, after
    our first write lost its compare-and-set), keeping the higher attempt count; None (write nothing) when ``rec``
    is final, or ``processing`` under a later delivery: a superseded attempt that ends late (its worker frozen past
    ``ack_wait``) does not overwrite the record of the attempt running now, whose outcome stands (attack31c F4:
    it did, and the ad read ``completed`` while its owner went on analysing it); with ``worker_id`` (this worker's)
    also when the ad is no longer this attempt's (:func:`recovered`: a later delivery named, or a recovery of this
    process took it back while its lease had lapsed: left39b item 2, a batch start's outcome whose write was held
    past the lapse was written over the recovery, 1 of 1 in ``tests/integration/test_stale_batch_write.py``)."""
    if rec.status.terminal or (rec.status == AdStatus.PROCESSING and superseded(rec, delivery)):
        return None
    if worker_id is not None and recovered(rec, delivery, worker_id):
        return None
    return done.model_copy(update={"attempts": max(rec.attempts, done.attempts)})


def retrying(rec: AdRecord, attempt: AdRecord, error: AdError, delay: float,
             owns: Callable[[AdRecord], bool]) -> AdRecord | None:
    """``rec`` ``queued`` again after the failed ``attempt`` (the record as the attempt started it), due in
    ``delay`` seconds from the error; an attempt that ran unmarked has its charge written now. None when
    the ad is final or no longer the attempt's (``owns``)."""
    if rec.status.terminal or not owns(rec):
        return None
    if rec.status != AdStatus.PROCESSING:  # our attempt ran unmarked: its charge is written now
        rec = rec.model_copy(update={
            "attempts": max(rec.attempts + 1, attempt.attempts), "delivery": attempt.delivery,
            "worker_id": attempt.worker_id, "started_at": attempt.started_at,
        })
    return rec.model_copy(update={
        "status": AdStatus.QUEUED,
        "error": error,
        "first_failure_at": rec.first_failure_at or error.at,
        "retry_at": (error.at or utcnow()) + timedelta(seconds=delay),
        "suspect": None,  # it ran and failed without taking its worker down
    })


def handed_back(rec: AdRecord, delivery: str, now: datetime) -> AdRecord | None:
    """``rec`` after a shutdown gave ``delivery`` back at ``now``: ``queued``, due at once, claimed by the
    delivery; its started attempt refunded (it was no analysis attempt), an older delivery's unfinished one
    made suspect. None when the ad is final or a later delivery owns it."""
    if rec.status.terminal or superseded(rec, delivery):
        return None
    update: dict[str, object] = {"status": AdStatus.QUEUED, "delivery": delivery,
                                 "retry_at": min(rec.retry_at or now, now)}
    if rec.status == AdStatus.PROCESSING and rec.delivery == delivery:
        update["attempts"] = max(0, rec.attempts - 1)  # not an analysis attempt: refunded
    elif rec.status == AdStatus.PROCESSING:  # an older delivery's attempt never ended
        update["suspect"] = True
    return rec.model_copy(update=update)


def unclaimed(rec: AdRecord, delivery: str) -> AdRecord | None:
    """What to write over ``rec`` before ``delivery`` is handed back uncharged after its claim (the slow path's
    ``processing`` write, one attempt charged: :meth:`~gamead_core.worker.settle.Settler.begin`) met our storage
    failing, so that the claim charges nothing whether it landed, will land, or never will (regress36 F4: a claim
    that landed after a NATS stall was later called a lost attempt and kept its charge):

    * ``rec`` is that claim (``processing`` under ``delivery``): ``queued`` again, its attempt refunded, still
      naming ``delivery`` (a shutdown's refund, :func:`handed_back`, but due as it was: its aging place kept);
    * anything else not final and not a later delivery's: ``rec`` itself, unchanged: written by compare-and-set
      over the revision read, so a claim still on its way (made over that revision or an older one) loses;
    * None (write nothing) when the ad is final or a later delivery owns it: no claim of ours can land then.
    Pure."""
    if rec.status.terminal or superseded(rec, delivery):
        return None
    if rec.status == AdStatus.PROCESSING and rec.delivery == delivery:
        return rec.model_copy(update={"status": AdStatus.QUEUED, "attempts": max(0, rec.attempts - 1)})
    return rec


def landed_here(rec: AdRecord, written: AdRecord) -> bool:
    """True when ``rec``, read after our write of ``written`` lost its compare-and-set, is that write or one of the
    compare-and-set loop's variants of it (their ``attempts`` may differ): it landed though its answer was lost (a
    timeout, then a retry over the old revision). Same status and delivery, and the same ``completedAt`` and
    ``retryAt``, each from one clock reading of ours that no other writer has."""
    return (rec.status == written.status and rec.delivery == written.delivery
            and rec.completed_at == written.completed_at and rec.retry_at == written.retry_at)


class UnlessLanded:
    """The change for the compare-and-set loop that follows our write of ``written`` when that write lost (or timed
    out and then lost): ``change(rec)``, or None (write nothing) when ``rec`` is ``written`` itself
    (:func:`landed_here`), which :attr:`landed` then says: our write landed and counts as ours (before, a write
    whose answer a NATS stall lost was never counted)."""

    def __init__(self, written: AdRecord, change: Callable[[AdRecord], AdRecord | None]) -> None:
        self._written, self._change = written, change
        self.landed = False  #: the last record read was our own write (the loop then writes nothing and ends)

    def __call__(self, rec: AdRecord) -> AdRecord | None:
        self.landed = landed_here(rec, self._written)
        return None if self.landed else self._change(rec)
