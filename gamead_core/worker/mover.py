"""Nothing stranded: a message JetStream gave up delivering is put back in the queue or dead-lettered.

gamead's level consumers have no delivery limit (``max_deliver = -1``; the analysis budget lives in the
record, see :mod:`gamead_core.worker.budget`), so JetStream never gives up on an ad. A consumer with a
finite ``max_deliver`` (made by an older gamead, or edited by hand) does: after the last delivery it drops
the message from its pending list, and the message stays in the work-queue stream where no consumer
delivers it again — with or without a record. (Measured on nats-server 2.15: the consumer's ack floor does
not move past it, so the floor alone does not tell.)

The count is exact and needs no record: on a level, every message in the stream is either new
(``num_pending``), delivered and not yet acknowledged (``num_ack_pending``: in flight or due back), or
stranded. So ``stranded = messages on the level subject − num_pending − num_ack_pending``
(:func:`stranded_count`; per level and work-stream partition, ``queue.partitions`` —
what ``gamead doctor`` can report as "past its consumer's delivery budget"). The three figures come from
two reads (``consumer_info``, then ``stream_info`` with a subject filter), and a publish landing between them
was counted as stranded (regress40 F7: ``GET /v1/doctor`` during a 200/s submit said 6 stranded, no ad named).
So the stream's last sequence is read once before the consumer too, and every sequence the stream gave out
between the two is taken off (:func:`stranded_bound`): a race now only undercounts (an ack between the reads
took a message off the subject that the consumer still counted ack pending). Which ones: the messages at or
below the consumer's delivered sequence are the delivered ones; when none of them is pending
(``num_ack_pending`` = 0) they are all stranded, otherwise the stale ones are (their record has not moved
for longer than any ``ack_wait``, backoff or analysis could take). :func:`sweep` settles each:

* record final → the message is a leftover: deleted;
* record missing → created from the message first (the ad was acknowledged with 202); a message no API published
  (:mod:`gamead_core.worker.poison`: no ad id it issues, or a body that is not that ad's record) is deleted,
  logged, counted and traced instead, and nothing is created;
* analysis budget spent → dead-lettered (DLQ copy, record ``dead``), then deleted;
* otherwise → re-published as a new message (id ``revive:<ad>:<seq>``, so a repeat is dropped) and the old
  one deleted: the ad gets fresh deliveries and keeps its budget.

One worker sweeps: the holder of the reaper lease (``gamead_leases``, key ``reaper``;
:func:`gamead_core.worker.reaper_loop.run_reaper`) calls :meth:`Sweeper.tick` on each of its rounds, and a
:class:`Sweeper` sweeps every ``SWEEP_EVERY`` s while its worker leads. The other workers never read the
stream for it (a sweep costs up to ``SWEEP_BATCH`` ``get_msg`` and KV reads per level). Each round of the
leader also heals the DLQ a little (:class:`gamead_core.worker.dlq_heal.DlqHealer`: entries of final ads that a
nats-server crash brought back), at once after a reconnection.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

from gamead_core import clock, names
from gamead_core.config import GameadSettings
from gamead_core.errors import Conflict, NotFound
from gamead_core.models import AdRecord
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.delete_msg import delete_if_present
from gamead_core.queue.depth import peek_next
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.publish import publish_ad
from gamead_core.store.ads import AdStore
from gamead_core.store.unreadable import UnreadableRecord
from gamead_core.telemetry.metrics import left_for_newer
from gamead_core.worker.budget import budget_spent, lost_error
from gamead_core.worker.deadletter import dead_letter
from gamead_core.worker.dlq_heal import DlqHealer
from gamead_core.worker.poison import NotAnAd, check_ad_id, message_record
from gamead_core.worker.poison_trace import raw_sample, reported
from gamead_core.worker.records import LeftForNewer, floored, said_recreated

log = logging.getLogger(__name__)

SWEEP_EVERY = 60.0  #: seconds between two sweeps (by the reaper)
SWEEP_BATCH = 500  #: most stranded messages one sweep handles per level


@dataclass
class SweepReport:
    requeued: int = 0
    dead_lettered: int = 0
    removed: int = 0  #: leftovers of final ads

    @property
    def total(self) -> int:
        return self.requeued + self.dead_lettered + self.removed


async def _record_of(store: AdStore, ad_id: str, data: bytes, delivered: int, max_attempts: int) -> AdRecord:
    """``ad_id``'s record, created from ``data`` if missing, floored as a worker's recreate is (``delivered``: the
    deliveries its consumer made, :func:`~gamead_core.worker.records.floored`; review31 R3: it had its whole budget
    again). Raises :class:`NotAnAd` when it is missing and ``data`` is not ``ad_id``'s record as the API writes it
    (:mod:`gamead_core.worker.poison`): nothing created."""
    try:  # the leader's copy: a final one deletes the message (attack40b F1: a replica's may lag a replay's write)
        return (await store.get(ad_id, consistent=True)).record
    except UnreadableRecord as bad:  # decided from the message; a worker rebuilds it at its delivery (attack31a F8)
        if bad.newer:  # a newer gamead's record: its sweep decides (review31 R10)
            raise LeftForNewer(ad_id, bad.revision, bad.why) from None
        return message_record(data, ad_id)
    except NotFound:
        record = floored(message_record(data, ad_id), delivered, max_attempts)
        try:
            await store.create(record)
        except Conflict:
            return (await store.get(ad_id, consistent=True)).record
        said_recreated(record, delivered, max_attempts, " by the sweep of stranded messages")
        return record


async def _deliveries(js: JetStreamContext, subject: str, partition: int) -> int:
    """How many deliveries a stranded message of ``subject`` had: its consumer's ``max_deliver`` (it is stranded
    once they are spent), at least 2 (it was delivered: the record existed)."""
    try:
        level = names.level_of_subject(subject)
    except (ValueError, IndexError):
        return 2
    with nats_boundary():
        try:
            info = await js.consumer_info(names.work_stream(partition), names.level_consumer(level, partition))
        except nats.js.errors.NotFoundError:
            return 2
    return max(2, int(info.config.max_deliver or 0))


async def settle_stranded(
    js: JetStreamContext, store: AdStore, dlq: DeadLetters, settings: GameadSettings, seq: int, report: SweepReport,
    partition: int = 0,
) -> None:
    """Re-queue, dead-letter or remove the stranded message ``seq`` of work-stream ``partition`` (see the module
    doc). A re-queued ad goes to its own partition (``queue.partitions``)."""
    stream = names.work_stream(partition)
    with nats_boundary():
        try:
            raw = await js.get_msg(stream, seq)
        except nats.js.errors.NotFoundError:
            return
    ad_id = (raw.headers or {}).get(names.HDR_AD_ID) or ""
    try:
        check_ad_id(ad_id or None)
        if not raw.data:
            raise NotAnAd("not_a_record", "its body is empty")
        delivered = await _deliveries(js, raw.subject or "", partition)
        record = await _record_of(store, ad_id, raw.data, delivered, settings.worker.max_attempts)
    except LeftForNewer:  # neither re-queued nor dead-lettered by an older gamead: left as it is
        left_for_newer("sweep")  # gamead_ads_left_for_newer_total on the worker's /metrics
        log.info("ad %s: stranded, but its record was written by a newer gamead: left to its sweep", ad_id,
                 extra={"ad_id": ad_id})
        return
    except NotAnAd as poison:  # never queued again nor made a record: removed, loudly (attack31a F3)
        await reported(js, raw_sample(stream, seq, raw.subject or "", raw.headers, raw.data, poison.reason,
                                      poison.why, clock.now()), poison, None, "deleting it (stranded)")
        await delete_if_present(js, stream, seq)
        report.removed += 1
        return
    if record.status.terminal:
        report.removed += 1
    elif budget_spent(record, settings.worker.max_attempts):
        error = lost_error(settings.worker.max_attempts, record)
        await dead_letter(store, dlq, record, error, record.attempts, source_seq=seq, worker_id=record.worker_id)
        report.dead_lettered += 1
        log.warning("ad %s was stranded past its budget: dead-lettered", ad_id, extra={"ad_id": ad_id})
    else:
        await publish_ad(js, ad_id=ad_id, level=names.level_of_subject(raw.subject), payload=raw.data,
                         timeout=settings.nats.request_timeout, msg_id=f"revive:{ad_id}:{seq}",
                         partitions=settings.queue.partitions)
        report.requeued += 1
        log.warning("ad %s was stranded in the work stream: queued again", ad_id, extra={"ad_id": ad_id})
    await delete_if_present(js, stream, seq)


def stranded_bound(on_subject: int, pending: int, ack_pending: int, last_before: int, last_after: int) -> int:
    """At most how many messages of a level are stranded, from reads taken at different moments (pure):
    ``pending`` and ``ack_pending`` (the consumer's ``num_pending``, ``num_ack_pending``), read between two
    reads of the stream's last sequence, ``last_before`` and ``last_after``; ``on_subject``, the messages on the
    level's subject, read with ``last_after``. Since the consumer read, the subject gained at most
    ``last_after − last_before`` messages (each publish takes a sequence; a delete or an ack only takes one off),
    so the result never exceeds what was stranded when the consumer was read: a steady flow of publishes and
    acks never makes a stranded count (regress40 F7). ≥ 0."""
    published = max(0, last_after - last_before)
    return max(0, on_subject - published - pending - ack_pending)


async def stranded_count(js: JetStreamContext, level: int, partition: int = 0, *,
                         bound: bool = True) -> tuple[int, ConsumerInfo | None]:
    """How many messages of ``level`` in work-stream ``partition`` its consumer gave up on, at most (see the
    module doc: a race between the reads only undercounts; :func:`stranded_bound`), and the consumer info it was
    computed with (None, and 0, when the consumer is missing). Three JetStream API calls: ``stream_info``,
    ``consumer_info``, ``stream_info`` with the level's subject filter. ``bound=False`` (the sweep's cap,
    :func:`stranded`): the last two only, nothing taken off, so a race only overcounts (a publish between them);
    the bound there took off every publish to the partition, any level, and a steady flow kept the sweep from
    naming what was stranded (review41 F1)."""
    subject, stream_name = names.level_subject(level, partition), names.work_stream(partition)
    with nats_boundary():
        before = await js.stream_info(stream_name) if bound else None
        try:
            info = await js.consumer_info(stream_name, names.level_consumer(level, partition))
        except nats.js.errors.NotFoundError:
            return 0, None  # the consumer is missing (the topology check recreates it)
        stream = await js.stream_info(stream_name, subjects_filter=subject)
    return stranded_bound(int((stream.state.subjects or {}).get(subject, 0)), int(info.num_pending or 0),
                          int(info.num_ack_pending or 0), int((before or stream).state.last_seq or 0),
                          int(stream.state.last_seq or 0)), info


def _stale(record: AdRecord | None, published: float, now: float, settings: GameadSettings) -> bool:
    """No delivery can still be pending for this ad: nothing moved for longer than an ``ack_wait``, the longest
    backoff and an analysis could take (plus a minute)."""
    q, w = settings.queue, settings.worker
    quiet = q.ack_wait + w.backoff_cap + w.task_timeout + 60.0
    if record is None:
        return now - published > quiet
    last = max(t.timestamp() for t in (record.submitted_at, record.started_at, record.retry_at) if t is not None)
    return now - last > quiet


async def stranded(
    js: JetStreamContext, level: int, settings: GameadSettings | None = None, store: AdStore | None = None,
    limit: int = SWEEP_BATCH, partition: int = 0,
) -> list[int]:
    """Sequences of the stranded messages of ``level`` in work-stream ``partition``, oldest first (at most
    ``limit``, and never more than :func:`stranded_count` without its bound: only messages at or below the
    consumer's delivered sequence are named, never one published during the reads). While some delivery of the
    level is pending, only messages whose record is stale count (``settings`` and ``store`` are needed for that;
    without them none is named)."""
    count, info = await stranded_count(js, level, partition, bound=False)
    if not count or info is None:
        return []
    delivered = int(info.delivered.stream_seq or 0) if info.delivered else 0
    exact = not info.num_ack_pending
    if not exact and (settings is None or store is None):
        return []
    out: list[int] = []
    seq, now = 0, clock.now()
    while len(out) < min(limit, count) and seq < delivered:
        with nats_boundary():
            raw = await peek_next(js, names.work_stream(partition), names.level_subject(level, partition), seq)
        if raw is None:
            break
        seq = raw.seq or 0
        if not seq or seq > delivered:
            break
        if not exact:
            assert settings is not None and store is not None
            try:
                record: AdRecord | None = (await store.get((raw.headers or {}).get(names.HDR_AD_ID, ""))).record
            except (NotFound, UnreadableRecord):
                record = None
            published = raw.time.timestamp() if raw.time is not None else now
            if not _stale(record, published, now, settings):
                continue
        out.append(seq)
    return out


async def sweep(js: JetStreamContext, store: AdStore, dlq: DeadLetters, settings: GameadSettings) -> SweepReport:
    """Find and settle every stranded message of every level of every partition (up to ``SWEEP_BATCH`` per level
    and partition)."""
    report = SweepReport()
    for partition in range(settings.queue.partitions):
        for level in names.LEVELS:
            for seq in await stranded(js, level, settings, store, partition=partition):
                await settle_stranded(js, store, dlq, settings, seq, report, partition)
    if report.total:
        log.warning("sweep: %d stranded ad(s) queued again, %d dead-lettered, %d leftovers removed",
                    report.requeued, report.dead_lettered, report.removed)
    return report


class Sweeper:
    """Sweeps every ``every`` seconds, on the worker that holds the reaper lease only.

    The first sweep comes a random 5 s … ``every`` after the worker first leads (capped by ``every``), so
    workers that start together do not sweep together after a take-over. A sweep comes at once at the first
    leading round after a reconnection to NATS, the lease lost meanwhile or not, or made before it first led (the
    count starts at a new connection's 0; ci53: its first round failed as the server stopped, and the first sweep
    was put a random 5 s … ``every`` on): a restarted nats-server is when a message past its consumer appears
    (after a full disk: attack43a F2, a completed ad's message that stayed until ``doctor --repair``; selfheal43);
    one that fails (the restarted server not answering yet) is tried again ``min(5 s, every)`` later until one
    completes (review44 F2: before, ``every`` later). ``runs`` counts the sweeps begun.
    """

    def __init__(self, every: float = SWEEP_EVERY, *, monotonic: Callable[[], float] = time.monotonic,
                 healer: DlqHealer | None = None) -> None:
        self.every = every
        self.runs = 0
        self._mono = monotonic
        self._next: float | None = None
        #: the reconnect count at the last leading round (kept between leads); 0 before the first one, a new
        #: connection's: a reconnection before it is one too (ci53: the first round failed with the server going away)
        self._reconnects = 0
        self._owed = False  #: a reconnection made a sweep due and none has completed since (review44 F2)
        self.healer = healer if healer is not None else DlqHealer(monotonic=monotonic)  #: the DLQ's healing

    async def tick(self, leading: bool, js: JetStreamContext, store: AdStore, settings: GameadSettings,
                   me: str, *, reconnects: int | None = None) -> SweepReport | None:
        """Sweep when ``leading`` and due; forget the schedule when not leading. The report, or None. Every
        leading round also heals the DLQ a little (:class:`~gamead_core.worker.dlq_heal.DlqHealer`; a pass at once
        when ``reconnects``, the NATS connection's reconnect count, changed). A change of ``reconnects`` since the
        last leading round makes the sweep due at once (the class doc)."""
        now = self._mono()
        if not leading:
            self._next = None
            self.healer.forget()
            return None
        await self.healer.tick(js, store, reconnects=reconnects)
        if reconnects is not None:
            if reconnects != self._reconnects:
                self._next = now  # a restarted server: its leftovers settled now, not up to ``every`` later
                self._owed = True
            self._reconnects = reconnects
        if self._next is None:
            self._next = now + random.uniform(min(5.0, self.every), self.every)
            return None
        if now < self._next:
            return None
        self._next = now + (min(5.0, self.every) if self._owed else self.every)  # one owed: again soon if it fails
        self.runs += 1
        report = await sweep(js, store, DeadLetters(js), settings)
        self._next, self._owed = now + self.every, False
        log.debug("sweep %d by %s: %d settled", self.runs, me, report.total, extra={"worker_id": me})
        return report


__all__ = ["SWEEP_EVERY", "SweepReport", "Sweeper", "settle_stranded", "stranded", "stranded_bound", "stranded_count",
           "sweep"]
