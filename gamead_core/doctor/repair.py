"""``gamead doctor --repair``: the fenced actions that fix what can be fixed safely. A ``repair`` operator job
(``gamead_core.jobs``) plans them with a fresh diagnosis (:meth:`RepairOps.plan`) and takes them one by one
(:meth:`RepairOps.act`), so a repair survives the client's disconnect, is resumed by another API node if
its own dies, and lands in the audit trail like every job.

Every action looks again before it acts and changes nothing unless the problem is still there, as the
doctor saw it (the record at the revision it read, the DLQ entry at the sequence it read, the message at its
sequence); otherwise it is skipped as ``healed``. Data no action can act on is skipped as what it is (attack31b
F3): a DLQ entry that is not an entry (``UNREADABLE``), a record whose body names another ad (``MISMATCHED``).
Every write is a compare-and-set or is addressed by sequence, so a repair racing a worker, a replay or another
repair never acts twice on one ad:

=========================  ===================================================================================
kind                       action
=========================  ===================================================================================
topology_missing           ``check_topology(create=True)``: what the API nodes' topology watch does
job_lease_expired          :meth:`JobService.take_over`: resume the job here, or end it (``jobs.max_resumes``)
lease_stuck                the lease released (no holder, expired now) by compare-and-set at the revision the
                           doctor read, once it stood so for its own ttl: a live node takes it at its next step
                           (:func:`gamead_core.doctor.leases.release_stuck`); the suspect lease at once, once no
                           run of its holder needs it (:mod:`gamead_core.doctor.suspect_lease`)
entry_without_record       create the ``dead`` record from the entry (create-only: never over a record)
dead_without_entry         write a DLQ entry from the record, only if the ad has none
                           (``Nats-Expected-Last-Subject-Sequence: 0``), then confirm the record at the revision
                           read (the import's fence: a write that lost is undone)
no_message                 record ``queued`` again by compare-and-set at the revision read (``jobId`` = the
                           job), then re-published with message id ``repair:<ad>:<revision>`` (used once; only
                           a resumed repair repeats it, which JetStream then drops). Budget spent → DLQ instead.
stranded                   the reaper's own sweep action (``gamead_core.worker.mover.settle_stranded``)
budget_spent               dead-lettered like a worker does it (DLQ copy, record ``dead`` if it is still as read),
                           then its messages removed
entry_of_completed,        the entry removed by its sequence, if the record is still completed / failed (what the
failed_with_entry          reaper's DLQ healing does by itself: ``gamead_core.worker.dlq_heal``)
entry_of_live_ad           the entry removed by its sequence only if the record says it was replayed from it
                           (``replayOf``): an unfinished replay. Otherwise left alone.
*_with_message             the message removed by its sequence, if the record is still completed / failed / dead
                           (dead: only while its DLQ entry exists)
obsolete_object            an obsolete stream of :data:`gamead_core.names.OBSOLETE_STREAMS` deleted
=========================  ===================================================================================

Not repaired, and why (``gamead_core.doctor.model.KINDS``): an incompatible object (never overwritten), more
than one message or DLQ entry for one ad (a worker acknowledges an obsolete copy when it comes; the DLQ keeps
one entry per ad by its own limit).
"""

from __future__ import annotations

import logging
from typing import Any

import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.doctor.diagnose import Doctor
from gamead_core.doctor.leases import Wait, release_stuck
from gamead_core.errors import Conflict, NotFound, TopologyChanged
from gamead_core.jobs.model import Mark
from gamead_core.jobs.policy import mark_words
from gamead_core.jobs.runner import JobService
from gamead_core.models import AdError, AdRecord, AdStatus, DlqEntry, clip_error, utcnow
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.delete_msg import delete_if_present
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.partitions import partition_of
from gamead_core.queue.publish import publish_ad
from gamead_core.queue.topology import TopologyReport, check_topology
from gamead_core.registry import Registry
from gamead_core.store.ads import AdStore, Versioned, encode
from gamead_core.worker.budget import budget_spent, lost_error
from gamead_core.worker.deadletter import dead_letter
from gamead_core.worker.dlq_heal import remove_entry_of
from gamead_core.worker.mover import SweepReport, settle_stranded

log = logging.getLogger(__name__)


def repair_msg_id(ad_id: str, revision: int) -> str:
    """The publish id of the re-publication of ``ad_id`` whose record the doctor read at ``revision``."""
    return f"repair:{ad_id}:{revision}"


def entry_from_record(record: AdRecord) -> DlqEntry:
    """The DLQ entry of a ``dead`` record that has none: its last error (or ``Unknown``), attempts, times."""
    now = utcnow()
    error = record.error or AdError(error_class="Unknown", message="dead without a recorded error (written by "
                                    "gamead doctor --repair)", retryable=True, at=record.completed_at or now)
    dead_at = record.completed_at or error.at or now
    error_class, message = clip_error(error.error_class, error.message)
    return DlqEntry(
        ad_id=record.id, title=record.ad.title, priority=record.priority, attempts=record.attempts,
        error_class=error_class, error_message=message, retryable=error.retryable,
        first_failure_at=record.first_failure_at or error.at or dead_at, last_failure_at=error.at or dead_at,
        dead_at=dead_at, worker_id=record.worker_id, submitted_at=record.submitted_at, ad=record.ad,
    )


class _Mismatch(Exception):
    """The record at an ad's key names another ad: no action is fenced by it (attack31b F3)."""


class RepairOps:
    """The repair actions of one API node (see the module doc)."""

    def __init__(self, nc: NATS, js: JetStreamContext, settings: GameadSettings, *, store: AdStore,
                 jobs: JobService | None = None, publish_timeout: float = 2.0) -> None:
        self.nc = nc
        self.js = js
        self.settings = settings
        self.store = store
        self.dlq = DeadLetters(js)
        self.jobs = jobs
        self.timeout = publish_timeout
        self._topology: TopologyReport | None = None

    async def plan(self) -> tuple[list[list[Any]], dict[str, int]]:
        """A fresh diagnosis: its repair actions, and how many problems of each kind it found. Raises
        :class:`TopologyChanged` (nothing done) when the work streams do not fit ``queue.partitions``."""
        diagnosis = await Doctor(self.nc, self.js, self.settings, self.store).diagnose()
        if diagnosis.report.topology_changed:  # its findings were read with the wrong partition map
            raise TopologyChanged(f"no repair: {diagnosis.report.topology_changed}")
        found = {f.kind.code: f.count for f in diagnosis.report.findings if f.count}
        log.info("repair planned", extra={"findings": found, "actions": len(diagnosis.actions)})
        return diagnosis.actions, found

    async def act(self, item: list[Any], job_id: str, wait: Wait | None = None) -> str:
        """Take one action; returns the :class:`Mark` of what happened: ``MISMATCHED`` (not ``HEALED``) when the
        ad's record names another ad, ``UNREADABLE`` when its DLQ entry is not an entry (attack31b F3: both were
        skipped as "healthy again", untrue). ``wait`` (seconds, what for): how an action that must wait does
        (``lease_stuck``: its job says it and keeps its lease meanwhile); None: a plain sleep."""
        code, key = item[0], item[1]
        try:
            if code == "lease_stuck":
                mark = await self._lease_stuck(item, job_id, wait)
            else:
                mark = await getattr(self, f"_{code}")(item, job_id)
        except _Mismatch:
            mark = Mark.MISMATCHED
        log.info("repair %s %s: %s", code, key, mark_words(mark), extra={  # words, not the one-letter mark
            "job_id": job_id, "kind": code, "mark": str(mark), "ad_id" if code not in _NOT_ADS else "object": key})
        return str(mark)

    def _work_stream(self, ad_id: str) -> str:
        """The work stream that holds ``ad_id``'s messages: its partition's (the doctor lists no others for it)."""
        return names.work_stream(partition_of(ad_id, self.settings.queue.partitions))

    async def _record(self, ad_id: str) -> Versioned | None:
        """The ad's record (None: it has none); raises :class:`_Mismatch` when its body names another ad."""
        try:
            versioned = await self.store.get(ad_id, consistent=True)
        except NotFound:
            return None
        if versioned.record.id != ad_id:
            raise _Mismatch(ad_id)
        return versioned

    # --- topology, jobs, obsolete objects ----------------------------------------------------------------

    async def _topology_missing(self, item: list[Any], job_id: str) -> str:
        if self._topology is None:
            self._topology = await check_topology(self.js, self.settings, create=True, update=False)
        state = next((o for o in self._topology.objects if o.label == item[1]), None)
        if state is None or state.outcome == "ok":
            return Mark.HEALED
        return Mark.OBJECT_CREATED if state.outcome == "created" else Mark.LEFT

    async def _job_lease_expired(self, item: list[Any], job_id: str) -> str:
        if self.jobs is None:
            return Mark.LEFT
        try:
            stuck_at = item[2] if len(item) > 2 and isinstance(item[2], int) else None  # no live runner (F2b)
            return Mark.JOB_TAKEN_OVER if await self.jobs.take_over(item[1], stuck_at) else Mark.HEALED
        except NotFound:
            return Mark.HEALED

    async def _lease_stuck(self, item: list[Any], job_id: str, wait: Wait | None = None) -> str:
        registry = Registry(self.nc, self.js, self.settings.registry, replicas=self.settings.queue.replicas,
                            timeout=self.settings.nats.request_timeout)  # a bucket it makes: as every node's
        lease = await release_stuck(self.js, self.settings, item[1], item[2],  # unchanged for its own ttl (R5)
                                    **({"wait": wait} if wait else {}), registry=registry)
        if lease is None:
            return Mark.HEALED  # renewed (its holder lives) or taken over meanwhile
        log.warning("released the %s lease held by %s", item[1], lease.holder, extra={"job_id": job_id})
        return Mark.LEASE_RELEASED

    async def _obsolete_object(self, item: list[Any], job_id: str) -> str:
        name = item[1]
        if name not in names.OBSOLETE_STREAMS:
            return Mark.LEFT
        with nats_boundary():
            try:
                await self.js.delete_stream(name)  # its consumers go with it
            except nats.js.errors.NotFoundError:
                return Mark.HEALED
        log.warning("deleted obsolete stream %s", name, extra={"object_name": name, "job_id": job_id})
        return Mark.OBJECT_DELETED

    # --- ads ---------------------------------------------------------------------------------------------

    async def _entry_without_record(self, item: list[Any], job_id: str) -> str:
        ad_id, seq = item[1], item[2]
        current = await self.dlq.current(ad_id)
        if current is None or current.seq != seq:
            return Mark.HEALED
        if current.entry is None:
            return Mark.UNREADABLE  # still there, not an entry: nothing to make a record from
        entry = current.entry
        try:
            await self.store.create(AdRecord(
                id=ad_id, status=AdStatus.DEAD, priority=entry.priority, submitted_at=entry.submitted_at,
                ad=entry.ad, attempts=entry.attempts, worker_id=entry.worker_id, job_id=job_id,
                completed_at=entry.dead_at, first_failure_at=entry.first_failure_at,
                error=AdError(error_class=entry.error_class, message=entry.error_message,
                              retryable=entry.retryable, at=entry.last_failure_at),
            ))
        except Conflict:
            return Mark.HEALED
        return Mark.RECORD_CREATED

    async def _dead_without_entry(self, item: list[Any], job_id: str) -> str:
        ad_id, revision = item[1], item[2]
        versioned = await self._record(ad_id)
        current = await self.dlq.current(ad_id)
        if current is not None:
            return Mark.ENTRY_WRITTEN if current.job_id == job_id else Mark.HEALED  # (resumed: done already)
        if versioned is None or versioned.revision != revision or versioned.record.status != AdStatus.DEAD:
            return Mark.HEALED
        record = versioned.record
        try:
            seq, _ = await self.dlq.add(entry_from_record(record), dedupe=False, expected_last_seq=0, job_id=job_id)
        except Conflict:
            return Mark.HEALED  # an entry appeared meanwhile
        try:
            await self.store.update(record.model_copy(update={"job_id": job_id}), revision)
        except Conflict:
            again = await self._record(ad_id)
            if again is None or again.record.status != AdStatus.DEAD:
                await self.dlq.delete_seq(seq)  # the ad moved on (replayed, purged…): take the entry back
                return Mark.HEALED
        return Mark.ENTRY_WRITTEN

    async def _no_message(self, item: list[Any], job_id: str) -> str:
        ad_id, revision = item[1], item[2]
        versioned = await self._record(ad_id)
        if versioned is None:
            return Mark.HEALED
        record = versioned.record
        if versioned.revision != revision:
            if record.job_id == job_id and record.status == AdStatus.QUEUED and record.retry_at is None:
                await self._publish(record, revision)  # resumed: repeat the publish (JetStream drops a repeat)
                return Mark.REPUBLISHED
            return Mark.HEALED
        if record.status not in (AdStatus.QUEUED, AdStatus.PROCESSING):
            return Mark.HEALED
        if budget_spent(record, self.settings.worker.max_attempts):
            error = lost_error(self.settings.worker.max_attempts, record)
            made = await dead_letter(self.store, self.dlq, record, error, record.attempts, source_seq=None,
                                     worker_id=record.worker_id, owns=lambda current: current == record)
            return Mark.DEAD_LETTERED if made else Mark.HEALED
        queued = record.model_copy(update={"status": AdStatus.QUEUED, "retry_at": None, "job_id": job_id})
        try:
            await self.store.update(queued, revision)
        except Conflict:
            return Mark.HEALED
        await self._publish(queued, revision)
        return Mark.REPUBLISHED

    async def _publish(self, record: AdRecord, revision: int) -> None:
        await publish_ad(self.js, ad_id=record.id, level=record.priority, payload=encode(record),
                         timeout=self.timeout, msg_id=repair_msg_id(record.id, revision),
                         partitions=self.settings.queue.partitions)

    async def _stranded(self, item: list[Any], job_id: str) -> str:
        report = SweepReport()
        await settle_stranded(self.js, self.store, self.dlq, self.settings, item[2], report,
                              item[3] if len(item) > 3 else 0)  # the partition (queue.partitions > 1)
        if report.requeued:
            return Mark.REPUBLISHED
        if report.dead_lettered:
            return Mark.DEAD_LETTERED
        return Mark.MESSAGE_REMOVED if report.removed else Mark.HEALED

    async def _budget_spent(self, item: list[Any], job_id: str) -> str:
        ad_id, revision, seqs = item[1], item[2], item[3]
        versioned = await self._record(ad_id)
        if versioned is None or versioned.revision != revision:
            return Mark.HEALED
        record = versioned.record
        if record.status.terminal or not budget_spent(record, self.settings.worker.max_attempts):
            return Mark.HEALED
        error = lost_error(self.settings.worker.max_attempts, record)
        made = await dead_letter(self.store, self.dlq, record, error, record.attempts,
                                 source_seq=seqs[0] if seqs else None, worker_id=record.worker_id,
                                 owns=lambda current: current == record)
        if not made:
            return Mark.HEALED
        for seq in seqs:
            await delete_if_present(self.js, self._work_stream(ad_id), seq)
        return Mark.DEAD_LETTERED

    async def _remove_entry(self, item: list[Any], statuses: tuple[AdStatus, ...], *, replayed: bool = False) -> str:
        # the rule the reaper's DLQ healing applies by itself to final ads (gamead_core.worker.dlq_heal)
        return await remove_entry_of(self.store, self.dlq, item[1], item[2], statuses, replayed=replayed)

    async def _entry_of_completed(self, item: list[Any], job_id: str) -> str:
        return await self._remove_entry(item, (AdStatus.COMPLETED,))

    async def _failed_with_entry(self, item: list[Any], job_id: str) -> str:
        return await self._remove_entry(item, (AdStatus.FAILED,))

    async def _entry_of_live_ad(self, item: list[Any], job_id: str) -> str:
        return await self._remove_entry(item, (AdStatus.QUEUED, AdStatus.PROCESSING, AdStatus.COMPLETED),
                                        replayed=True)

    async def _remove_message(self, item: list[Any], status: AdStatus) -> str:
        ad_id, seq = item[1], item[2]
        versioned = await self._record(ad_id)
        if versioned is None or versioned.record.status != status:
            return Mark.HEALED
        if status == AdStatus.DEAD and await self.dlq.current(ad_id) is None:
            return Mark.LEFT  # never remove the last copy of a dead ad
        return Mark.MESSAGE_REMOVED if await delete_if_present(self.js, self._work_stream(ad_id), seq) else Mark.HEALED

    async def _dead_with_message(self, item: list[Any], job_id: str) -> str:
        return await self._remove_message(item, AdStatus.DEAD)

    async def _completed_with_message(self, item: list[Any], job_id: str) -> str:
        return await self._remove_message(item, AdStatus.COMPLETED)

    async def _failed_with_message(self, item: list[Any], job_id: str) -> str:
        return await self._remove_message(item, AdStatus.FAILED)


_NOT_ADS = frozenset({"topology_missing", "job_lease_expired", "obsolete_object", "lease_stuck"})

__all__ = ["RepairOps", "entry_from_record", "repair_msg_id"]
