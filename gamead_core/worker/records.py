"""The record a delivery starts from (:func:`read_record`), and its re-creation from the message.

The un-keyed submit path creates the ``queued`` record (acknowledged) before it publishes the work message with
the very same bytes and ``Gamead-Record-Revision: <revision>`` (:mod:`gamead_core.intake`). So on a first
delivery carrying that header the message *is* the record at that revision and nothing is read (issue 14.2:
the record read was ~9 % of the worker's time). Every later write is a compare-and-set over that revision, so a
record changed since (a sweep, a doctor repair, an operator, a racing copy) makes the write lose, and the
fallback (``AdStore.mutate``: read, decide again) rules; a record that is gone is created again from the
message (:func:`recreate`). Messages without the header (keyed ads, replays, sweeps, repairs, messages of an
older gamead) are read as before.

A body is trusted, or a record created from it, only when it is the record the API would have published for the
message's ``Gamead-Ad-Id`` (:func:`gamead_core.worker.poison.message_record`): otherwise the message is not an ad
(:class:`~gamead_core.worker.poison.NotAnAd`) and nothing is created under either id (attack31a F3).
"""

from __future__ import annotations

import asyncio
import logging

import nats.js.errors
from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.errors import Conflict, NotFound, QueueUnavailable
from gamead_core.models import AdRecord
from gamead_core.store.ads import AdStore, Versioned
from gamead_core.store.unreadable import UnreadableRecord
from gamead_core.telemetry.metrics import record_recreated
from gamead_core.worker.poison import NotAnAd, message_record

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger, as handle.py's

#: Pauses (seconds) before a first delivery looks again for a record not written yet (the keyed path writes it
#: right after its publish; see :func:`read_record`).
RECORD_WAITS = (0.002, 0.005, 0.01)
#: Seconds after its body's ``submittedAt`` within which a first delivery's message is taken as the record at the
#: revision it names (:func:`published_at_submit`): the API publishes right after the create; later, it is read.
TRUSTED_WITHIN = 10.0
#: Seconds a delivery whose record a newer gamead wrote waits before it comes back (:class:`LeftForNewer`).
NEWER_WAIT = 30.0
#: A ``Gamead-Record-Revision`` worth trusting: a KV revision (a stream sequence, a uint64) in decimal digits.
_MAX_REVISION_DIGITS = 20


class Withdrawn(Exception):
    """A delivery of an ad its API withdrew: its key ends in a delete marker naming that API
    (``Gamead-Withdrawn``), so its client was told "not queued: safe to resend" and ``GET /ads/{id}`` says 404.
    Its record is not made again from the message and the ad is not run (the delivery is acknowledged): a queuing
    that missed the create fence (a reaper of an older gamead, a hand-made publish) must not analyse it behind the
    client's back, perhaps twice if the client resent it (fix34b; ``gamead doctor``: analysed_without_record)."""

    def __init__(self, ad_id: str, origin: str) -> None:
        super().__init__(f"its API {origin[:120]} withdrew it (its client was told 'not queued: safe to resend')")
        self.ad_id, self.origin = ad_id, origin


async def withdrawn_by(store: AdStore, ad_id: str) -> str | None:
    """The API that withdrew ``ad_id`` if its key's last message (read from the stream leader) is its withdrawal
    marker, else None (no marker of that kind, or the read failed: then the record is made as before)."""
    try:
        last = await store.js.get_last_msg(names.ADS_BUCKET_STREAM, names.kv_subject(names.ADS_BUCKET, ad_id))
    except Exception:  # noqa: BLE001 - nothing on the key, or cannot tell: not withdrawn as far as we know
        return None
    headers = last.headers or {}
    return headers.get(names.HDR_WITHDRAWN) if headers.get(names.HDR_KV_OPERATION) == "DEL" else None


class LeftForNewer(Exception):
    """The record of ``ad_id`` (at ``revision``) was written by a newer gamead (an unknown status:
    :func:`gamead_core.store.unreadable.written_by_newer`): this worker must neither rebuild it nor run the ad; its
    delivery is put back for :data:`NEWER_WAIT` s, for a newer worker (review31 R10, README "Upgrades")."""

    def __init__(self, ad_id: str, revision: int, why: str) -> None:
        super().__init__(f"the record of ad {ad_id} (revision {revision}) was written by a newer gamead ({why})")
        self.ad_id = ad_id
        self.revision = revision


def record_revision(msg: Msg) -> int | None:
    """The ``Gamead-Record-Revision`` of ``msg`` (:data:`gamead_core.names.HDR_RECORD_REVISION`): a positive
    integer of at most 20 ASCII digits below 2**64, else None (absent or malformed: the record is read)."""
    value = (msg.headers or {}).get(names.HDR_RECORD_REVISION)
    if not value or len(value) > _MAX_REVISION_DIGITS or not value.isascii() or not value.isdigit():
        return None
    revision = int(value)
    return revision if 0 < revision < 2**64 else None


def trusted_record(msg: Msg, ad_id: str) -> Versioned | None:
    """The record a first delivery carries at the revision its header names; None (read it instead) when the
    header is absent or malformed, the body is not ``ad_id``'s record as the API writes it (then the store is
    read, and a miss finds the message poison: :func:`recreate`), or the message was stored more than
    :data:`TRUSTED_WITHIN` seconds after the body's ``submittedAt`` (:func:`published_at_submit`)."""
    revision = record_revision(msg)
    if revision is None:
        return None
    try:
        record = message_record(msg.data, ad_id)
    except NotAnAd:
        return None
    return Versioned(record, revision) if published_at_submit(msg, record) else None


def published_at_submit(msg: Msg, record: AdRecord) -> bool:
    """Whether ``msg`` was stored within :data:`TRUSTED_WITHIN` seconds of ``record.submitted_at`` (its body), as the
    API's publish right after the record's create is. A copy published later (by hand, another tool, a late
    re-publish) may name the revision of a record that has moved on since, even a final one: its body is then not
    trusted and the record is read, so a completed ad is never analysed again with the body's budget (attack31b
    F7). A message without a timestamp is not trusted. Pure; clocks (the API's, nats-server's) are compared."""
    stored = msg.metadata.timestamp
    if stored is None:
        return False
    return (stored - record.submitted_at).total_seconds() <= TRUSTED_WITHIN


def attempts_floor(delivered: int, max_attempts: int | None) -> int:
    """The ``attempts`` a record recreated at delivery ``delivered`` (``num_delivered``) is assumed to have been
    charged: one per earlier delivery, at most half the budget (``max_attempts // 2``; None: no cap). Redeliveries
    are not all charged attempts: hand-backs (a full buffer, a shutdown, our storage failing), ``ack_wait``
    redeliveries and the waits beside a live holder are deliveries too (review31 R3: 231 deliveries of an ad
    analysed once), so the count is an assumption, said as one (:func:`floored`); capped at half, the ad keeps at
    least half its budget at each loss, and some of it is always charged, so the budget never restarts whole at
    each drop (attack31a F1). Never ``max_attempts`` or more: never none left. Pure."""
    floor = max(0, delivered - 1)
    return floor if max_attempts is None else min(floor, max(0, max_attempts // 2))


def floored(record: AdRecord, delivered: int, max_attempts: int | None) -> AdRecord:
    """``record`` (a work message's body) as recreated at delivery ``delivered``: ``attempts`` at least
    :func:`attempts_floor`, and ``attemptsAssumed`` how many of them are assumed (not counted by a worker), so its
    DLQ entry says so (:func:`gamead_core.worker.deadletter.dead_letter`). Unchanged at a first delivery. Pure."""
    if delivered <= 1:
        return record
    attempts = max(record.attempts, attempts_floor(delivered, max_attempts))
    assumed = attempts - record.attempts + (record.attempts_assumed or 0)
    return record.model_copy(update={"attempts": attempts, "attempts_assumed": assumed or None})


def said_recreated(record: AdRecord, delivered: int, max_attempts: int | None, where: str) -> None:
    """One WARNING for ``record`` recreated at delivery ``delivered`` (``where``: by whom), counted in
    ``gamead_records_recreated_total``."""
    log.warning("ad %s: its record was gone at delivery %d (dropped by the full record bucket (records.max_bytes), "
                "or deleted): created again from its work message%s with %d attempt(s) charged of %s, %d of them "
                "assumed", record.id, delivered, where, record.attempts, max_attempts, record.attempts_assumed or 0,
                extra={"ad_id": record.id, "deliveries": delivered})
    record_recreated()


async def not_written_yet(store: AdStore, msg: Msg, record: AdRecord) -> bool:
    """True when the keyed ad ``record`` (``msg``'s body) has no record because its API has not written it yet, not
    because it was dropped or deleted (attack33b F4: a keyed ad handed back from a prefetch buffer before its API's
    create was charged an attempt and called "gone"). The keyed path writes the record after its message, so that
    record is younger than the message; the full bucket (``records.max_bytes``, discard old) drops the oldest
    records first, so while the records' stream holds one stored before the message, it cannot have been dropped;
    a deleted, purged or expired record leaves a marker on its key. False for an un-keyed ad, or when a read fails
    (the floor then applies, as before)."""
    stored, stream = msg.metadata.timestamp, names.ADS_BUCKET_STREAM
    if record.idempotency_key is None or stored is None:
        return False
    try:
        try:
            await store.js.get_last_msg(stream, names.kv_subject(names.ADS_BUCKET, record.id))
            return False  # a marker, or the record written meanwhile
        except nats.js.errors.NotFoundError:
            pass  # nothing on the key
        state = (await store.js.stream_info(stream)).state
        first = await store.js.get_msg(stream, state.first_seq) if state.messages else None
    except Exception:  # noqa: BLE001 - cannot tell: the floor applies
        return False
    return first is not None and first.time is not None and first.time < stored


async def recreate(store: AdStore, msg: Msg, ad_id: str, max_attempts: int | None = None) -> None:
    """Create ``ad_id``'s record from ``msg`` (the message is the truth; nothing if one exists meanwhile). At a
    redelivery (``num_delivered`` > 1) the record existed and is gone (the full bucket dropped it,
    ``records.max_bytes``, or it was deleted): its ``attempts`` are floored and the assumed part named
    (:func:`floored`), else the budget would start again at every drop (attack31a F1), and it is said
    (:func:`said_recreated`); unless it is a keyed ad whose record was never written yet (:func:`not_written_yet`):
    then nothing is charged (an earlier delivery handed back unread is no attempt) and one INFO line says so. Raises
    the store's errors, :class:`~gamead_core.worker.poison.NotAnAd` (a ``ValueError``) for a body that is not
    ``ad_id``'s record as the API writes it, :class:`Withdrawn` for an ad its API withdrew: then nothing is created."""
    delivered = msg.metadata.num_delivered or 1
    body = message_record(msg.data, ad_id)
    if (origin := await withdrawn_by(store, ad_id)) is not None:
        raise Withdrawn(ad_id, origin)
    unwritten = delivered > 1 and await not_written_yet(store, msg, body)
    record = body if unwritten else floored(body, delivered, max_attempts)
    try:
        await store.create(record)
    except Conflict:
        return
    if unwritten:
        log.info("ad %s: its record was not written yet at delivery %d (a keyed submit writes it after its message): "
                 "created from its work message, no attempt charged", ad_id, delivered,
                 extra={"ad_id": ad_id, "deliveries": delivered})
    elif delivered > 1:
        said_recreated(record, delivered, max_attempts, "")


async def rebuild(store: AdStore, msg: Msg, ad_id: str, bad: UnreadableRecord,
                  max_attempts: int | None = None) -> None:
    """Write ``ad_id``'s record from ``msg`` over the record this gamead cannot read (``bad``: its revision) by
    compare-and-set, so the accepted ad the message carries is analysed, never lost (attack31a F8: the valid
    message was terminated as "not an ad"). Its ``attempts`` are floored as :func:`recreate` does (the unreadable
    record's count is unknown). Said (one WARNING) and counted in ``gamead_records_recreated_total``. Nothing is
    written if the record changed since (someone rebuilt it: it is read again). Raises the store's errors,
    :class:`~gamead_core.worker.poison.NotAnAd` when the body is not ``ad_id``'s record either (today's poison
    rules): then nothing is written; :class:`LeftForNewer` when ``bad`` is a newer gamead's record (never written
    over: review31 R10)."""
    if bad.newer:
        raise LeftForNewer(ad_id, bad.revision, bad.why)
    delivered = msg.metadata.num_delivered or 1
    record = floored(message_record(msg.data, ad_id), delivered, max_attempts)
    try:
        await store.update(record, bad.revision)
    except Conflict:
        return
    log.warning("ad %s: its record (revision %d) could not be read (%s); rebuilt from its work message at delivery "
                "%d with %d attempt(s) charged of %s", ad_id, bad.revision, bad.why, delivered,
                record.attempts, max_attempts, extra={"ad_id": ad_id, "deliveries": delivered})
    record_recreated()


async def read_record(store: AdStore, msg: Msg, ad_id: str, *, first: bool = False,
                      max_attempts: int | None = None, leader: bool = False) -> Versioned:
    """The record the delivery ``msg`` of ``ad_id`` starts from. ``first`` (``num_delivered == 1``): the
    message's own record when it names its revision (:func:`trusted_record`), else the store is read, and on a
    miss the stream leader asked again after each of ``RECORD_WAITS`` (17 ms in all) before the record is
    created from the message (an API that died between its two writes); a record this gamead cannot read is
    rebuilt from the message (:func:`rebuild`). Raises the store's errors
    (:class:`~gamead_core.errors.QueueUnavailable` …; also when the record created from the message is gone again
    at its read-back twice: the delivery is handed back, never terminated, review31 R7),
    :class:`~gamead_core.worker.poison.NotAnAd` for a body that is not ``ad_id``'s record (:func:`recreate`),
    :class:`LeftForNewer` for a record a newer gamead wrote (:func:`rebuild`).
    ``max_attempts``: ``worker.max_attempts``, the cap of a recreated record's floor (:func:`recreate`);
    ``leader``: the stream leader's copy (not a replica's, not the message's: :func:`~.budget.ends_unrun`)."""
    if first and not leader and (trusted := trusted_record(msg, ad_id)) is not None:
        return trusted
    try:
        return await store.get(ad_id, consistent=leader)
    except NotFound:
        pass
    except UnreadableRecord as bad:  # not a missing ad: rebuilt over it from the message (attack31a F8)
        await rebuild(store, msg, ad_id, bad, max_attempts)
        return await store.get(ad_id, consistent=True)
    for pause in RECORD_WAITS if first else ():
        await asyncio.sleep(pause)
        try:
            return await store.get(ad_id, consistent=True)
        except NotFound:
            continue
    for _ in range(2):  # deleted again between the create and the read (an operator, the full bucket): once more
        await recreate(store, msg, ad_id, max_attempts)
        try:
            return await store.get(ad_id, consistent=True)
        except NotFound:
            continue
    # a valid ad (its body passed message_record) is never poison: handed back uncharged, as storage failing (R7)
    raise QueueUnavailable(f"the record of ad {ad_id} vanished twice right after it was created from its message")
