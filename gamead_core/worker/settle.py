"""The record writes of one delivery: claim the ad for an attempt, then settle the message with its outcome.

Every write is a compare-and-set made only while the record still names this delivery (or, for a completed
analysis, while the ad is not final), so a delivery whose ad was handed over meanwhile never overwrites the new
owner's work; it is counted only when the write was ours (also when it landed though its answer was lost:
:class:`~gamead_core.worker.transitions.UnlessLanded`). Writes go through the storage pause (retried until our
storage takes them) and, with every ack, are shielded from cancellation: an ad is never left half-written.

* :meth:`Settler.read` – the ad's record: the message on a first delivery naming its revision, else read, and
  created from the message if the API never wrote it (:mod:`gamead_core.worker.records`);
* :meth:`Settler.started` – the record as an attempt under this delivery sees it, in memory: written only with
  the outcome, or by :meth:`Settler.mark` past ``worker.processing_mark_after`` (:mod:`.handle`);
* :meth:`Settler.begin` – ``processing`` under this delivery, charging one attempt of the budget (slow path);
* :meth:`Settler.complete` – ``completed`` + the analysis, then ``ack``;
* :meth:`Settler.fail` – ``queued`` with a backoff then ``nak(delay)``, or dead-letter then ``ack`` (DLQ full:
  ``queued``, ``nak(delay)``: :mod:`.dlq_wait`);
* :meth:`Settler.give_up` – spent budget, last attempt without outcome, or waiting for the DLQ: dead-letter;
* :meth:`Settler.hand_back` – shutdown: refund a started attempt, ``nak`` at once;
* :meth:`Settler.stale`, :meth:`Settler.not_an_ad` – deliveries that must not run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from nats.aio.msg import Msg

from gamead_core import clock, names
from gamead_core.config import WorkerSettings
from gamead_core.errors import Conflict, GameadError, NotFound
from gamead_core.full_stores import DlqFull
from gamead_core.models import AdError, AdRecord, Analysis, utcnow
from gamead_core.queue.dlq import DeadLetters
from gamead_core.store.ads import AdStore, Versioned
from gamead_core.store.unreadable import UnreadableRecord
from gamead_core.worker.backoff import backoff
from gamead_core.worker.completed_json import completed_bytes, completed_record
from gamead_core.worker.budget import (
    budget_spent, due_since, lost_attempt, lost_error, parse_delivery, superseded, waiting_since,
)
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.deadletter import dead_letter
from gamead_core.worker.dlq_wait import DlqWait
from gamead_core.worker.foreign import settle_foreign
from gamead_core.worker.give_back import give_back
from gamead_core.worker.hooks import Failure
from gamead_core.worker.lost_count import count_lost
from gamead_core.worker.poison import NotAnAd
from gamead_core.worker.poison_trace import terminate
from gamead_core.worker.records import read_record, rebuild, recreate
from gamead_core.worker.rounds import SettleRounds
from gamead_core.telemetry.metrics import WorkerMetrics
from gamead_core.worker.storage_pause import STORAGE_ERRORS, StoragePause
from gamead_core.worker.transitions import UnlessLanded, completing, owner, retrying, started_record

log = logging.getLogger(__name__)
T = TypeVar("T")

Shielding = Callable[[Awaitable[Any]], Awaitable[Any]]  #: a :class:`~gamead_core.worker.shield.Shield`


class Settler:
    """Writes outcomes for one worker (``worker_id``) to ``store`` (the ad records, public: a hand-back's refund
    writes there too), counting what its own writes did in ``stats`` (a :class:`~.counters.WorkerStats`)."""

    def __init__(self, store: AdStore, dlq: DeadLetters, settings: WorkerSettings, *, worker_id: str,
                 stats: WorkerStats, pause: StoragePause, shielded: Shielding, ack_wait: float | Callable[[], float],
                 metrics: WorkerMetrics | None = None) -> None:
        self.store, self._dlq, self.settings, self.worker_id, self.stats = store, dlq, settings, worker_id, stats
        self._pause, self._shielded = pause, shielded
        #: () → seconds: the level consumers' live ack_wait (the keep-alive's, fix32lim), or the number given
        self.ack_wait = ack_wait if callable(ack_wait) else (lambda: float(ack_wait))  # type: ignore[arg-type]
        self.metrics = metrics if metrics is not None else WorkerMetrics(False)  #: Prometheus series (telemetry)
        self.rounds = SettleRounds(store, getattr(shielded, "track", None))  #: completed outcomes, in rounds
        self.dlq_wait = DlqWait(stats, worker_id)  #: ads the full DLQ refused (gamead_core.worker.dlq_wait)

    async def _persist(self, write: Callable[[], Awaitable[T]],
                       stalled: Callable[[], Awaitable[object]] | None = None) -> T:
        return await self._pause.persist(write, self._shielded, stalled)

    async def _or_recreated(self, msg: Msg, write: Callable[[], Awaitable[T]]) -> T:
        """``write()``; if it found no record (:class:`NotFound`), again once it is created from the message
        (:func:`~.records.recreate`: deleted since a first delivery trusted its message, or never written at the
        revision named), or rebuilt from it over one this gamead cannot read (:func:`~.records.rebuild`)."""
        ad_id = (msg.headers or {}).get(names.HDR_AD_ID, "")
        try:
            return await write()
        except NotFound:
            await recreate(self.store, msg, ad_id, self.settings.max_attempts)  # NotAnAd: nothing made
        except UnreadableRecord as bad:  # written over since it was read: rebuilt from the message (attack31a F8)
            await rebuild(self.store, msg, ad_id, bad, self.settings.max_attempts)
        return await write()

    async def read(self, msg: Msg, ad_id: str, *, first: bool = False, leader: bool = False) -> Versioned:
        """The ad's record (:func:`gamead_core.worker.records.read_record`, its ``first`` and ``leader``)."""
        return await read_record(self.store, msg, ad_id, first=first, leader=leader,
                                 max_attempts=self.settings.max_attempts)

    def started(self, rec: AdRecord, delivery: str, suspect: bool = False, at: datetime | None = None) -> AdRecord:
        """``rec`` as the attempt under ``delivery`` sees it: ``processing`` here since ``at`` (None: now) (pure)."""
        return started_record(rec, delivery, self.worker_id, suspect, at)

    async def mark(self, current: Versioned) -> Versioned:
        """Write ``current.record`` (a :meth:`started` one) over ``current.revision``: the ``processing`` mark of an
        analysis past ``worker.processing_mark_after``; shielded. Raises :class:`Conflict` or a storage error."""
        return Versioned(current.record, await self._shielded(self.store.update(current.record, current.revision)))

    async def begin(self, current: Versioned, delivery: str, suspect: bool, msg: Msg) -> tuple[str, Versioned]:
        """Mark the ad ``processing`` under ``delivery``, charging one attempt. Returns ``("started", …)``,
        or ``("final" | "spent" | "superseded", record)`` when the record changed so that it must not run.
        ``msg``: the delivery, to create the record from if it is found missing after a lost write."""
        store = self.store
        for _ in range(5):
            rec = current.record
            if rec.status.terminal:
                return "final", current
            if superseded(rec, delivery):
                return "superseded", current
            if budget_spent(rec, self.settings.max_attempts):
                return "spent", current
            new = self.started(rec, delivery, suspect)
            try:
                started = Versioned(new, await self._shielded(store.update(new, current.revision)))
            except Conflict:
                current = await self._or_recreated(msg, lambda: store.get(rec.id, consistent=True))
                continue
            if lost_attempt(rec, delivery):  # the attempt it follows died with its worker, and is retried now
                await count_lost(store.js)  # counted where the APIs read it (lost_count; attack29a F11)
            return "started", started
        raise Conflict(f"ad {current.record.id} kept changing; not started")

    async def waiting_since(self, ad_id: str, seq: int, published: float, handed: bool = False) -> float | None:
        """For the puller: when the delivered, unacked ``ad_id`` is or was due for redelivery (epoch s; None: held),
        judged by the level consumers' live ``ack_wait`` (not this worker's own ``queue.ack_wait``); ``handed``: this
        worker handed it back (due from ``published`` while ``queued``, :func:`~.budget.waiting_since`)."""
        try:
            record = (await self.store.get(ad_id)).record
        except Exception:  # noqa: BLE001 - unreadable: treat as in a worker's hands
            return None
        return waiting_since(record, published, clock.now(), ack_wait=self.ack_wait(),
                             task_timeout=self.settings.task_timeout, handed=handed)

    async def stale(self, msg: Msg, record: AdRecord, delivery: str) -> None:
        """The record names a later delivery than ours. Of the same message: someone else holds it now (our
        lease lapsed), so leave the message to them. Of a later message (a replay or a sweep published the
        ad again): ours is an obsolete copy, acknowledged so it leaves the stream."""
        if parse_delivery(record.delivery)[0] != parse_delivery(delivery)[0]:
            self.stats.skipped += 1
            await self._shielded(msg.ack())

    async def not_an_ad(self, msg: Msg, poison: NotAnAd) -> None:
        """A work-stream message no API published: terminated once, logged, counted and traced
        (:func:`gamead_core.worker.poison_trace.terminate`). It never got a 202."""
        await terminate(msg, poison, self.store.js, self.metrics, self._shielded)

    async def complete(self, msg: Msg, current: Versioned, analysis: Analysis, delivery: str) -> None:
        """Write the completed record (compare-and-set), then acknowledge. Counted only if our write did it.

        The write and the ``ack`` go in a settle round with the others finished in the same turn, or while the
        previous round awaited its acks (:mod:`gamead_core.worker.rounds`). A write that lost its compare-and-set
        (the record changed since it was read) reads the record again and finishes the ad unless it is final or a
        later delivery runs it (:func:`~gamead_core.worker.transitions.completing`), then acknowledges if final; one
        our storage failed is retried after the storage back-off (lease held) until it is taken."""
        now = utcnow()
        first = await self.rounds.complete(msg, current.record.id, completed_bytes(current.record, now, analysis),
                                           current.revision)
        await self.completed(msg, current, analysis, delivery, now, first)

    async def completed(self, msg: Msg, current: Versioned, analysis: Analysis, delivery: str, now: datetime,
                        first: int | GameadError) -> None:
        """:meth:`complete` once its round answered ``first`` (the new revision: counted, never waits; else the
        error its write met: finished as the module doc says). Also the batch start's (:mod:`.batch_start`)."""
        store, started = self.store, current.record
        if isinstance(first, int):  # written and acknowledged by the round
            return self.counted(started, now)
        done = completed_record(started, now, analysis)  # the record itself only where a retry needs it
        finished = UnlessLanded(done, lambda rec: completing(rec, done, delivery, self.worker_id))  # not ours: None

        async def finish() -> bool:  # changed meanwhile (a hand-over while we were cut off): unless final or taken
            return await self._or_recreated(msg, lambda: store.mutate(done.id, finished)) is not None or finished.landed

        async def write() -> bool:
            try:
                await store.update(done, current.revision)
                return True
            except Conflict:
                return await finish()

        if isinstance(first, Conflict):
            written = await self._persist(finish)
        else:
            if isinstance(first, STORAGE_ERRORS):  # the back-off, as for any failed write (storage_pause)
                await asyncio.sleep(self._pause.failed(first))
            written = await self._persist(write)
        if not written:  # final already (acknowledged), or a later delivery runs it: its worker settles it
            return await self._settle_foreign(msg, started.id, "analysed")
        self.stats.processed += 1
        self._sample(current.record, now)
        # Not shielded (one task fewer per ad): an ack is put in nats-py's buffer before its first await, whole
        await msg.ack()  # not sent (refused, closed): AdHandler says so; ack_wait redelivers it

    def counted(self, started: AdRecord, now: datetime, began: datetime | None = None) -> None:
        """The attempt of ``started`` (its :meth:`started` record, or its queued one begun at ``began``) completed at
        ``now``, written and acknowledged: counted, sampled (:meth:`completed`'s, without a coroutine: the batch's)."""
        self._pause.ok()
        self.stats.processed += 1
        self._sample(started, now, began)

    def _sample(self, record: AdRecord, finished: datetime, began_at: datetime | None = None) -> None:
        started, now = record.started_at if began_at is None else began_at, clock.now()
        if started is not None:
            began = started.timestamp()  # once: an aware datetime's timestamp() asks its tzinfo each time
            processing_ms = (finished.timestamp() - began) * 1000
            wait_ms = max(0.0, began - due_since(record).timestamp()) * 1000  # from when it became due
            self.stats.recent.append((now, processing_ms, wait_ms))
            self.metrics.completed(record.priority, processing_ms / 1000, wait_ms / 1000, now)
        self.stats.last_progress = now

    async def fail(self, msg: Msg, current: Versioned, failure: Failure, delivery: str, *,
                   marked: bool = True) -> None:
        """Retry with backoff, or dead-letter: at once for a permanent error, else after the last attempt. Written
        only while the record is still this attempt's (:func:`owner`); counted only when written. ``marked=False``:
        ``current.record`` (a :meth:`started` record) was never written (the fast path); our storage failing, it is
        written then (``processing``, charged). A full DLQ gives the slot back (:meth:`_park`)."""
        self.stats.last_progress, wcfg, attempt = clock.now(), self.settings, current.record.attempts
        error = AdError(error_class=failure.error_class, message=failure.message, retryable=failure.retryable,
                        at=utcnow())
        owns = owner(delivery)
        if failure.retryable and attempt < wcfg.max_attempts:
            delay = failure.delay if failure.delay is not None else backoff(
                attempt, base=wcfg.backoff_base, cap=wcfg.backoff_cap
            )
            written = await self._persist(lambda: self._or_recreated(
                msg, lambda: self._record_retry(current, error, delay, owns)))
            if written:
                self._count_failure(error, dead=False)
                self.metrics.retried(current.record.priority)
                await self._shielded(msg.nak(delay=delay))
                log.info("ad %s attempt %d failed (%s); retry in %.2fs", current.record.id, attempt,
                         failure.error_class, delay, extra={"ad_id": current.record.id})
            else:
                await self._settle_foreign(msg, current.record.id, "failed")
            return
        async def stalled() -> None:
            await self.mark(current)

        dead_at = utcnow()  # one reading for every retry of the write: how a repeat knows its own (dead_letter)
        try:
            made_dead = await self._persist(lambda: self._or_recreated(msg, lambda: self._dead_letter(
                current.record, error, attempt, source_seq=msg.metadata.sequence.stream, owns=owns,
                dead_at=dead_at)), None if marked else stalled)
        except DlqFull as full:
            return await self._park(msg, current.record, error, full, owns)
        if made_dead:
            self._count_failure(error, dead=True)
            await self._shielded(msg.ack())
        else:
            await self._settle_foreign(msg, current.record.id, "dead-lettered")

    def _count_failure(self, error: AdError, *, dead: bool) -> None:
        """One failed attempt recorded: retried (``dead`` False) or dead-lettered (True)."""
        self.stats.failed += 1
        self.stats.dead += int(dead)
        self.stats.last_error = f"{error.error_class}: {error.message}"

    async def _settle_foreign(self, msg: Msg, ad_id: str, what: str) -> None:
        """Our outcome (``what``) was not ours to write: acknowledged, left to a later delivery's holder or handed
        back after a back-off, on the leader's record, and said (:func:`~.foreign.settle_foreign`, attack40b F2)."""
        delay = backoff(msg.metadata.num_delivered or 1, base=self.settings.backoff_base, cap=self.settings.backoff_cap)
        await settle_foreign(self.store, self._shielded, msg, ad_id, what, delay)

    async def _record_retry(
        self, current: Versioned, error: AdError, delay: float, owns: Callable[[AdRecord], bool]
    ) -> bool:
        store = self.store

        def retry(rec: AdRecord) -> AdRecord | None:
            return retrying(rec, current.record, error, delay, owns)

        new = retry(current.record)
        if new is None:
            return False
        try:
            await store.update(new, current.revision)
            return True
        except Conflict:
            again = UnlessLanded(new, retry)
            return await store.mutate(current.record.id, again) is not None or again.landed

    async def _dead_letter(
        self, record: AdRecord, error: AdError, attempts: int, *, source_seq: int | None,
        owns: Callable[[AdRecord], bool] | None = None, dead_at: datetime,
    ) -> bool:
        """Copy the ad into the DLQ first, then mark its record ``dead`` at ``dead_at``. Safe to repeat."""
        store, dlq = self.store, self._dlq
        made = await dead_letter(store, dlq, record, error, attempts, source_seq=source_seq,
                                 worker_id=self.worker_id, owns=owns, dead_at=dead_at)
        if made:
            self.dlq_wait.took()
            self.metrics.dead(record.priority, error.error_class)
            log.warning("ad %s dead-lettered after %d attempt(s): %s: %s", record.id, attempts,
                        error.error_class, error.message, extra={"ad_id": record.id})
        return made

    async def give_up(self, msg: Msg, record: AdRecord, delivery: str) -> None:
        """Dead-letter the ad without an analysis: its budget is spent and its last attempt left no outcome (its
        worker died), or its dead-lettering waits for room in the DLQ (``deadLetterError``, :meth:`_park`)."""
        max_attempts = self.settings.max_attempts
        due = record.dead_letter_error
        error = due or lost_error(max_attempts, record)

        def owns(rec: AdRecord) -> bool:
            waits = rec.dead_letter_error is not None if due else budget_spent(rec, max_attempts)
            return waits and not superseded(rec, delivery)

        dead_at = utcnow()  # one reading for every retry of the write (the error may be the reaper's, shared)
        try:
            made = await self._persist(lambda: self._dead_letter(
                record, error, record.attempts, source_seq=msg.metadata.sequence.stream, owns=owns, dead_at=dead_at))
        except DlqFull as full:
            return await self._park(msg, record.model_copy(update={"delivery": delivery, "worker_id": self.worker_id}),
                                    error, full, lambda rec: not superseded(rec, delivery))
        if made:
            self._count_failure(error, dead=True)
            await self._shielded(msg.ack())
        else:
            await self._settle_foreign(msg, record.id, "dead-lettered")

    async def _park(self, msg: Msg, attempt: AdRecord, error: AdError, full: DlqFull,
                    owns: Callable[[AdRecord], bool]) -> None:
        """The full DLQ refused ``attempt``'s ``error``: ``queued``, ``nak`` with a back-off (``dlq_wait``)."""
        async def write(change: Callable[[AdRecord], AdRecord | None]) -> bool:
            return await self._persist(lambda: self._or_recreated(
                msg, lambda: self.store.mutate(attempt.id, change))) is not None

        written, delay = await self.dlq_wait.park(write, attempt, error, full, owns)
        if written:
            await self._shielded(msg.nak(delay=delay))
        else:
            await self._settle_foreign(msg, attempt.id, "parked for the full DLQ")

    async def hand_back(self, msg: Msg, ad_id: str, delivery: str) -> None:
        """Shutdown: give the ad back at once, its started attempt refunded
        (:func:`~gamead_core.worker.give_back.give_back`). Never raises."""
        await give_back(self.store, self.stats, msg, ad_id, delivery, ack_wait=self.ack_wait())
