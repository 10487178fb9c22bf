"""Accepting an ad: give it an id, record it, then put it on the queue.

Why the order is safe ("a 202 is never lost"): the 202 is answered only once *both* writes were acknowledged
by JetStream: the ``queued`` record (a create-only compare-and-set, its revision ``r`` learnt from the ack) and
then the work message, which carries ``Gamead-Record-Revision: r`` so a worker's first delivery uses the
message as the record at ``r`` without reading it back (issue 14.2; every later write is still a
compare-and-set over ``r``, so a record changed meanwhile makes it lose and the worker read again).

* The record write is refused (an error ack): no message was published, the client gets a 503, nothing is
  left behind. Its ack does not come in time (NATS stalled: the record may be stored): nothing is published and
  the record is withdrawn in the background (:mod:`gamead_core.unsettled`; a create landing after its delete
  marker is refused), but the client gets the "may still be queued" 503 with the ad's id (:func:`~gamead_core.
  errors.maybe_queued`): should this API die before the withdrawal lands, the reaper settles the record as in
  the last case below and the ad runs.
* The publish definitely fails (the stream is full, no stream, an error ack): the record is deleted again
  (compare-and-set at ``r``) and the client gets the same 503 as before. If that delete fails too (the
  records' stream failing over with the work stream's), it is sent again in the background until answered
  (:mod:`gamead_core.unsettled`).
* The publish is ambiguous (no ack in time): the client gets a 503 and may retry (a new ad; with an
  ``Idempotency-Key`` the same one); the message is published again under the same message id in the
  background (:mod:`gamead_core.unsettled`: JetStream deduplicates it), so the record never stays without its
  message: the ad completes, as an ambiguous publish always could.
* The API dies between the two writes: no 202 was given; a ``queued`` record without a message is left. The
  record's create names this API process (``Gamead-Origin``, :attr:`AdStore.origin`), and the reaper queues it
  again once this API's registry entry expires (:mod:`gamead_core.worker.orphans`; ``gamead doctor``'s
  ``no_message`` if it was created more than ``queue.duplicate_window`` ago).

The keyed path (``Idempotency-Key``) publishes first (JetStream's deduplication of the derived id guards it
against concurrent repeats) and writes its record right after; if the API dies between, a worker creates it.

Idempotency keys (draft-ietf-httpapi-idempotency-key-header; Stripe behaves the same way):

* a key is **scoped to its caller**: the ad id is a hash of (scope, key), the scope the caller's token name
  (``token:<name>``) or ``anonymous``, so two clients that both send ``Idempotency-Key: order-1`` get two ads;
* a key is **bound to its ad**: the record keeps a fingerprint (sha256) of the validated ad, so an exact
  repeat answers the first ad with ``duplicate: true`` and enqueues nothing, while the same key with another
  ad is refused (:class:`~gamead_core.errors.IdempotencyKeyReused`, 422). "The same ad" is compared after
  validation: field order, surrounding whitespace and defaults spelt out or not make no difference;
* a key is remembered as long as its ad's record is kept (``records.completed_max_age``, less when the full
  bucket drops it); concurrent repeats are caught by JetStream's deduplication of the derived id, whose ack
  names the first message, even before the first request wrote its record. A repeat deduplicated whose first ad
  is kept nowhere is refused (:func:`~gamead_core.errors.key_kept_nowhere`, 409), never answered as queued.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime
from typing import NamedTuple

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from ulid import ULID

from gamead_core import names
from gamead_core.accepted import Accepted
from gamead_core.ad_ids import new_ad_id, new_ad_ids
from gamead_core.batch_writes import create_records, publish_messages
from gamead_core.errors import (Conflict, GameadError, IdempotencyKeyReused, NotFound, QueueUnavailable,
                                key_kept_nowhere, maybe_queued)
from gamead_core.key_in_process import IdempotencyKeyInProcess, key_in_process
from gamead_core.log_throttle import Throttle, say
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.partitions import partition_of
from gamead_core.queue.atomic import AtomicBatches
from gamead_core.queue.publish import Outgoing, not_stored, publish_ad_acked
from gamead_core.store.ads import AdStore, decode, encode
from gamead_core.store.queued_json import queued_record, queued_records, stamp_text
from gamead_core.telemetry.metrics import ad_submitted
from gamead_core.unsettled import Unsettled

log = logging.getLogger(__name__)

ANONYMOUS_SCOPE = "anonymous"  #: the scope of callers without a token (see the module docstring)
_KEPT_NOWHERE = Throttle()  #: the 409 of a key kept nowhere: one line every 5 s (a client resends it at will)
#: pauses while looking for the first ad of a duplicate whose record is not written yet (about 1 s in all)
_FIRST_AD_WAITS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.3)


def keyed_ad_id(scope: str, idempotency_key: str) -> str:
    """The id of the ad a caller submits with ``idempotency_key``: the same for the same (scope, key), and
    different for another caller's same key. A ULID-shaped hash (its time part carries no time)."""
    scoped = scope.encode()  # length-prefixed: no (scope, key) pair can pass for another
    digest = hashlib.sha256(b"gamead-idem:%d:" % len(scoped) + scoped + idempotency_key.encode()).digest()[:16]
    return str(ULID.from_bytes(digest)).lower()


def ad_fingerprint(ad: AdSubmission) -> str:
    """sha256 (hex) of the validated ad's canonical JSON: what a repeated key must carry again."""
    return hashlib.sha256(ad.model_dump_json().encode()).hexdigest()


class Queued(NamedTuple):
    """An ad of :meth:`Intake.submit_many`, stored and queued (its ``queued`` record and its message both
    acknowledged): what its 202 says, without the record."""

    id: str
    priority: int
    submitted_at: datetime
    duplicate: bool


class Intake:
    """The submit path of the API."""

    def __init__(self, js: JetStreamContext, store: AdStore, *, publish_timeout: float, partitions: int = 1,
                 atomic_batches: bool = False, reaper_reach: float = 0.0) -> None:
        self._js = js
        #: which streams take submit_many's writes as atomic batches (api.batch_atomic; gamead_core.batch_writes)
        self.atomic = AtomicBatches(enabled=atomic_batches)
        self._store = store
        self._timeout = publish_timeout
        self._partitions = partitions  #: queue.partitions: which work stream each ad goes to
        #: the ambiguous submits being settled in the background (gamead_core.unsettled)
        self.unsettled = Unsettled(js, store, timeout=publish_timeout, partitions=partitions, reaper_reach=reaper_reach)

    async def submit(
        self, ad: AdSubmission, idempotency_key: str | None = None, *, scope: str = ANONYMOUS_SCOPE,
        legacy_key: str | None = None, refuse: Exception | None = None) -> Accepted:
        """Queue ``ad`` (a validated :class:`AdSubmission`) on the work stream at its priority level; with
        ``idempotency_key``, at most once per (``scope``, key): ``scope`` is the caller's token name (or
        ``anonymous``), so two callers' keys never collide (draft-ietf-httpapi-idempotency-key-header).

        Returns :class:`Accepted`: the ``queued`` :class:`AdRecord` (a new ULID id; for a key, an id derived from
        scope and key) and ``duplicate`` (True when a repeated key answered with the first ad). When it returns,
        JetStream has stored both the record and the message (the 202 is never lost; the order and why it is
        safe: the module doc). The record is encoded once for both writes. ``legacy_key``: the key as an older API
        stored it (a quoted header, quotes included: :class:`gamead_core.api.key_header.QuotedKey`); when no ad
        has the key's id but one has that key's, that ad answers (as a repeat; review30 F4). ``refuse`` (keyed
        only): raised unless the key repeats (the full record bucket's refusal: a repeat adds no record; review31 R2).

        Raises :class:`IdempotencyKeyReused` for a known key with another ad (422), :class:`IdempotencyKeyExpired`
        for a repeat whose first ad is kept nowhere (409); :class:`QueueFull` (``queue.max_msgs``/``max_bytes``),
        :class:`StorageFailed` (JetStream cannot store), :class:`MaybeQueued` (``details.adId``: an ack did not
        come within ``api.publish_timeout`` s), other :class:`QueueUnavailable` (NATS surely took nothing) (503).
        """
        if idempotency_key is None:  # the common path: the record, then the message, both awaited
            ad_id, now = new_ad_id(), utcnow()
            stamp = stamp_text(now)
            payload = queued_record(ad_id, stamp, now, ad)  # once, for both writes; no AdRecord made (Accepted.fresh)
            accepted = Accepted.fresh(ad_id, ad, now, stamp)
            try:
                revision = await self._create(accepted, payload)
            except GameadError as exc:
                if self._withdraw_if_ambiguous(ad_id, exc):
                    raise maybe_queued(ad_id, keyed=False) from exc
                raise
            try:
                published = await publish_ad_acked(
                    self._js, ad_id=ad_id, level=ad.priority, payload=payload, timeout=self._timeout,
                    partitions=self._partitions, record_revision=revision,
                )
            except GameadError as exc:
                kept = await self._after_failed_publishes([(Outgoing(ad_id, ad.priority, payload, revision), exc)])
                if not_stored(exc) and not kept:
                    raise
                raise maybe_queued(ad_id, keyed=False) from exc
            if published.duplicate:  # a fresh ULID never repeats; answered as it would be, should it ever
                accepted.duplicate = True
                return accepted
            ad_submitted(ad.priority)
            return accepted
        return await self._submit_keyed(ad, idempotency_key, scope, legacy_key, refuse)

    async def _create(self, accepted: Accepted, payload: bytes) -> int:
        """Create the record of a fresh ad (``payload``: its bytes); its revision. The ack is awaited here, not
        three calls down in :meth:`AdStore.create` (each coroutine between an await and its task is resumed and
        suspended again on every wait: issue 14.4); any answer but an ack (a lost compare-and-set, a key being
        written …) is left to :meth:`AdStore.create`, which sorts them out. Raises what it raises, but its
        :class:`Conflict` as :class:`QueueUnavailable` (an ambiguous create, withdrawn by the caller)."""
        with nats_boundary():
            try:
                return (await (await self._store.send_create(accepted.id, payload))).seq
            except nats.js.errors.APIError:
                pass  # an error ack: not stored; AdStore.create retries or names the error
        try:
            return await self._store.create(accepted.record, payload)
        except Conflict as exc:  # nobody else writes a fresh id: a try of ours won, its answer lost (withdrawn)
            raise QueueUnavailable(f"the record of ad {accepted.id} may be stored: {exc.message}") from exc

    def _withdraw_if_ambiguous(self, ad_id: str, exc: GameadError) -> bool:
        """A record create of the fresh id ``ad_id`` failed with ``exc``: if its ack merely did not come (the
        record may be stored, now or later), withdraw it in the background and answer True: the ad's answer is
        then :func:`maybe_queued`, never "stored nothing" (should this API stop first, the reaper queues the
        record, :mod:`gamead_core.worker.orphans`: a drill analysed 450 ads a 503 had told to send again)."""
        if isinstance(exc, Conflict) or not_stored(exc):
            return False
        self.unsettled.record_maybe_created(ad_id)
        return True

    async def _after_failed_publishes(self, failed: list[tuple[Outgoing, GameadError]]) -> set[str]:
        """The publishes of ``failed`` (each ad's :class:`Outgoing`, its record at ``revision``, and the error
        met): the records of those certainly not stored are taken back, all at once (one deadline); the
        ambiguous ones are finished in the background (:meth:`Unsettled.message_maybe_published`). Returns the
        ids of refused ads whose record is still there (its delete left to the background): their answer is
        "may still be queued" too, for should this API stop first, the reaper queues the record (review14)."""
        refused = []
        for out, exc in failed:
            if not_stored(exc):
                refused.append((out.ad_id, out.revision))
            else:
                self.unsettled.message_maybe_published(out.ad_id, out.level, out.payload, out.revision)
        return await self._take_back(refused) if refused else set()

    async def _take_back(self, refused: list[tuple[str, int | None]]) -> set[str]:
        """Delete the records of ads whose message JetStream refused (``(ad_id, revision)`` pairs: each
        only while still at its revision): now, or, for each that fails too, in the background until answered
        (:meth:`Unsettled.take_back`); the ids of the latter."""
        try:
            answers: list[GameadError | None] = list(await self._store.withdraw_many(refused))
        except GameadError as exc:
            answers = [exc] * len(refused)
        kept = set()
        for (ad_id, revision), answer in zip(refused, answers, strict=True):
            if answer is not None:
                log.info("ad %s was refused by the queue and its record could not be taken back yet (%s): "
                         "retrying in the background", ad_id, answer.message, extra={"ad_id": ad_id})
                self.unsettled.take_back(ad_id, revision)
                kept.add(ad_id)
        return kept

    async def _submit_keyed(self, ad: AdSubmission, key: str, scope: str, legacy: str | None,
                            refuse: Exception | None) -> Accepted:
        ad_id = keyed_ad_id(scope, key)
        fingerprint = ad_fingerprint(ad)
        first = await self._known(ad_id, None if legacy is None else keyed_ad_id(scope, legacy))
        if first is not None:  # a repeat after the first request finished (or an older API's: legacy)
            return _repeat(first, fingerprint, key)  # the key as the client reads it, never '"abc"' (review30b F9)
        if refuse is not None:  # would add a record (review31 R2)
            raise refuse
        record = AdRecord(id=ad_id, status=AdStatus.QUEUED, priority=ad.priority, submitted_at=utcnow(), ad=ad,
                          idempotency_key=key, idempotency_fingerprint=fingerprint)
        payload = encode(record)
        try:
            published = await publish_ad_acked(self._js, ad_id=ad_id, level=ad.priority, payload=payload,
                                               timeout=self._timeout, partitions=self._partitions)
        except IdempotencyKeyInProcess as exc:  # a concurrent request with this key is storing it (attack38a F3)
            raise key_in_process(key) from exc
        except GameadError as exc:  # no answer: stored or not, a worker creates the record from the message
            if not_stored(exc):
                raise
            raise maybe_queued(ad_id, keyed=True) from exc
        if published.duplicate:  # a concurrent or retried request already enqueued this id
            first = await self._first_ad(ad_id, published.seq)
            if first is None:  # no record, no message: the full bucket dropped it (attack31a F2); nothing is queued
                say(_KEPT_NOWHERE, "", asyncio.get_running_loop().time(), log, logging.WARNING,
                    "Idempotency-Key repeat of ad %s, which is kept nowhere: answered 409", ad_id)
                raise key_kept_nowhere(key, ad_id)
            return _repeat(first, fingerprint, key)
        await self._record(record, payload)  # written before answering: GET finds it
        ad_submitted(ad.priority)
        return Accepted(record, duplicate=False)

    async def _known(self, ad_id: str, legacy_id: str | None) -> AdRecord | None:
        """The record of ``ad_id``, else of ``legacy_id`` (an older API's id of a quoted key), else None; both read
        at once (review30b F9: in turn, a fresh quoted key cost 2 round trips). Raises AdStore.get's but NotFound."""
        try:
            reads = [await self._store.get(ad_id)] if legacy_id is None else await asyncio.gather(
                self._store.get(ad_id), self._store.get(legacy_id), return_exceptions=True)
        except NotFound:  # the one read of a key not quoted
            return None
        for read in reads:
            if isinstance(read, BaseException) and not isinstance(read, NotFound):
                raise read
        return next((read.record for read in reads if not isinstance(read, BaseException)), None)

    async def _record(self, record: AdRecord, payload: bytes) -> None:
        """The keyed path's record write, after its message was stored."""
        try:
            await self._store.create(record, payload)
        except Conflict:
            pass  # a worker already picked the message up and created the record from it
        except GameadError as exc:  # the ad is safe on the stream; the worker will create the record
            log.warning("ad %s enqueued but its record was not written: %s", record.id, exc.message,
                        extra={"ad_id": record.id})

    async def submit_many(self, ads: list[AdSubmission]) -> list[Queued | GameadError]:
        """Queue ``ads`` (no idempotency keys) in the order of :meth:`submit`, each step pipelined: the records
        created (:meth:`AdStore.create_queued_many`, their bytes built without an :class:`AdRecord`:
        :mod:`gamead_core.store.queued_json`, the same bytes), then the messages of the ads whose record was
        stored published (:func:`publish_ads`, with ``Gamead-Record-Revision``); each step as JetStream atomic
        batches, one ack per batch, where the server and stream take them (:mod:`gamead_core.batch_writes`).
        One result per ad, in order,
        each :class:`Queued` only once JetStream acknowledged both, else the gamead error it met (refused
        publishes take their records back, together, as :meth:`submit` does). Never raises for one ad."""
        now = utcnow()
        ids = new_ad_ids(len(ads))
        payloads = queued_records(ids, now, ads)
        created = await create_records(self._js, self._store, self.atomic, ids, payloads)
        results: list[Queued | GameadError] = []
        outgoing: list[Outgoing] = []
        stored: list[int] = []
        for i, (ad_id, revision) in enumerate(zip(ids, created, strict=True)):
            if isinstance(revision, int):
                outgoing.append(Outgoing(ad_id, ads[i].priority, payloads[i], revision))
                stored.append(i)
            elif self._withdraw_if_ambiguous(ad_id, revision):
                revision = maybe_queued(ad_id, keyed=False)
            results.append(revision)  # type: ignore[arg-type]  # each int is replaced below
        published = await publish_messages(self._js, self.atomic, outgoing, timeout=self._timeout,
                                           partitions=self._partitions) if outgoing else []
        failed: list[tuple[Outgoing, GameadError]] = []
        for i, out, outcome in zip(stored, outgoing, published, strict=True):
            if isinstance(outcome, GameadError):
                failed.append((out, outcome))
                results[i] = outcome if not_stored(outcome) else maybe_queued(out.ad_id, keyed=False)
            elif isinstance(outcome, Exception):  # not a NATS error: a bug, reported for this ad alone; whether
                # its message is stored is unknown, so it is settled as an unanswered publish is (V6)
                results[i] = GameadError(f"ad could not be queued: {outcome}")
                failed.append((out, results[i]))  # type: ignore[arg-type]
            else:
                results[i] = Queued(out.ad_id, out.level, now, outcome.duplicate)
                if not outcome.duplicate:
                    ad_submitted(out.level)  # gamead_ads_submitted_total, as for a single submit
        kept = await self._after_failed_publishes(failed) if failed else set()
        for i in stored:
            if ids[i] in kept:
                results[i] = maybe_queued(ids[i], keyed=False)
        return results

    async def _first_ad(self, ad_id: str, seq: int) -> AdRecord | None:
        """The ad first enqueued under ``ad_id``: its record, else its message (stream sequence ``seq``, still
        waiting), waiting about a second for one of them; None if neither is found (both gone already)."""
        for pause in _FIRST_AD_WAITS:
            try:
                return (await self._store.get(ad_id)).record
            except NotFound:
                pass
            with nats_boundary():
                try:
                    msg = await self._js.get_msg(names.work_stream(partition_of(ad_id, self._partitions)), seq)
                except nats.js.errors.NotFoundError:
                    msg = None  # consumed (its record is on its way) or gone
            if msg is not None and msg.data and (msg.headers or {}).get(names.HDR_AD_ID) == ad_id:
                return decode(msg.data)
            await asyncio.sleep(pause)
        return None


def _repeat(first: AdRecord, fingerprint: str, key: str) -> Accepted:
    """The answer to a repeated key: the first ad if this is the same ad, else :class:`IdempotencyKeyReused`."""
    if first.idempotency_fingerprint is not None and first.idempotency_fingerprint != fingerprint:
        raise IdempotencyKeyReused.of(key, first.id)
    return Accepted(first, duplicate=True)
