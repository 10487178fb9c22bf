"""Ad records in a JetStream KV bucket, updated by compare-and-set on the entry revision.

Reads are consistent where it matters. The bucket allows direct gets (``$JS.API.DIRECT.GET``), which any
replica may answer, including one that has not applied the newest write yet (an R3 cluster answers from
the fastest replica). So a direct read that finds nothing is confirmed by the stream leader
(``STREAM.MSG.GET``) before :class:`NotFound` is raised, and a read after a lost compare-and-set asks the
leader. A record that exists is therefore never reported missing, and :meth:`AdStore.create` raising
:class:`Conflict` means the leader holds the record (the next read will see it).

Writes are compare-and-set publishes to the key's subject (``Nats-Expected-Last-Subject-Sequence``, ADR-8)
whose acks are awaited on the connection's one reply subscription with one timer for all deadlines
(:func:`gamead_core.queue.acks.publish_acked`), not through nats-py's ``kv.update``/``js.publish`` (a request
each: an inbox future and a ``wait_for`` timer per write; issue 14.2).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from gamead_core import names
from gamead_core.errors import Conflict, GameadError, NotFound, QueueUnavailable
from gamead_core.models import STORED, AdRecord, AdStatus
from gamead_core.queue.acks import Ack, publish_acked
from gamead_core.queue.connection import nats_boundary, translate
from gamead_core.queue.direct_read import clustered_of, fell_back, hedged
from gamead_core.store import cas
from gamead_core.store.listing import RecordsPage, newest_records, records_page
from gamead_core.store.retention import bucket_scope, final_record_ttl, records_scope
from gamead_core.store.unreadable import decode_stored
from gamead_core.store.write_heads import create_heads, write_headers

log = logging.getLogger(__name__)
#: how often :meth:`AdStore.create` looks again at a key whose create lost to a write not applied yet, and the pause
CREATE_TRIES, CREATE_PAUSE = 20, 0.025


def encode(record: AdRecord) -> bytes:
    return record.model_dump_json(exclude_none=True).encode()


def decode(data: bytes) -> AdRecord:
    return AdRecord.model_validate_json(data, context=STORED)  # an older record still reads (models.STORED)


@dataclass(frozen=True, slots=True)
class Versioned:
    """A record and the KV revision it was read at (the ``last`` of the next compare-and-set)."""

    record: AdRecord
    revision: int


def _bucket(js: JetStreamContext, *, direct: bool) -> KeyValue:
    return KeyValue(name=names.ADS_BUCKET, stream=names.ADS_BUCKET_STREAM, pre=names.kv_prefix(names.ADS_BUCKET),
                    js=js, direct=direct)


#: statuses no record ever leaves: written with the bucket's per-key TTL (see gamead_core.store.retention)
FINAL_STATUSES = frozenset({AdStatus.COMPLETED, AdStatus.FAILED})


def _lost(exc: BaseException) -> bool:
    """True for JetStream's answer to a compare-and-set that lost, decided (:func:`gamead_core.store.cas.verdict`)."""
    return cas.verdict(exc) == cas.LOST


def _busy(exc: BaseException) -> QueueUnavailable:
    """A compare-and-set still busy after :func:`gamead_core.store.cas.publish_cas` tried it again: not decided."""
    return cas.still_busy(exc, cas.BUSY_TRIES)


def _translated(exc: BaseException) -> GameadError:
    """A write's error as the gamead error tree (a lost create-only put: :class:`Conflict`), chained to ``exc`` as
    ``raise … from exc`` would: the API reads the cause (a "no responders" from a stream electing its leader is
    not a missing stream: :func:`gamead_core.api.leaderless.leaderless`; ``queue.publish.not_stored``)."""
    if _lost(exc):
        return Conflict(f"the record already exists ({exc.description})")  # type: ignore[attr-defined]
    out = _busy(exc) if cas.verdict(exc) == cas.BUSY else translate(exc)
    out = out if isinstance(out, GameadError) else QueueUnavailable(f"record write failed: {out!r}")
    if out is not exc and out.__cause__ is None:
        out.__cause__ = exc
    return out


def _update_error(exc: BaseException) -> GameadError:
    """A compare-and-set update's error as the gamead error tree: lost is :class:`Conflict`; still busy
    (:func:`gamead_core.store.cas.verdict`) is :class:`QueueUnavailable`, as an unanswered write."""
    if _lost(exc):
        return Conflict(f"the record changed ({getattr(exc, 'description', None) or exc!r})")
    if cas.verdict(exc) == cas.BUSY:
        return _busy(exc)
    out = translate(exc)
    return out if isinstance(out, GameadError) else QueueUnavailable(f"record write failed: {out!r}")


class AdStore:
    """Reads and writes :class:`AdRecord` s. Every NATS error leaves as a gamead error (``nats_boundary``).

    Construct without I/O (``AdStore(nc, js)``): a missing bucket shows at first use, as
    :class:`~gamead_core.errors.TopologyMissing`, until the topology watch has recreated it.

    ``final_ttl`` (seconds, or None): the TTL of completed and failed records, read from the bucket by
    :meth:`open`; every write of such a record carries it, so finished ads expire before anything else.
    ``timeout`` (seconds): how long a write waits for its ack; default the JetStream context's own timeout
    (nats-py's default 5 s, as ``kv.update`` waited).
    """

    def __init__(
        self, nc: NATS, js: JetStreamContext, kv: KeyValue | None = None, *, final_ttl: float | None = None,
        timeout: float | None = None,
    ) -> None:
        self._nc = nc
        self.js = js  #: the JetStream context (public: gamead_core.worker.lost_count)
        self._timeout = timeout if timeout is not None else float(getattr(js, "_timeout", None) or 5.0)
        self._kv = kv or _bucket(hedged(js), direct=True)  #: direct gets: any replica answers, or the leader
        self._leader = _bucket(js, direct=False)  #: STREAM.MSG.GET: the stream leader answers
        self.final_ttl = final_ttl
        self.origin: str | None = None  #: an API's incarnation: its creates' Gamead-Origin (worker.orphans)
        #: what :meth:`page` reads the bucket through: the API's reads connection (gamead_core.api.read_conn), else js
        self.reads: JetStreamContext | None = None
        #: which bucket this is, among every NATS's: its creation time (None: not read, or gone). What a cache shared
        #: by several deployments (one Redis) keys its entries by, so no deployment answers another's (attack59);
        #: kept up with the bucket by :meth:`follow`
        self.scope: str | None = None

    @classmethod
    async def open(cls, nc: NATS, js: JetStreamContext) -> AdStore:
        """The store of the ad bucket, with the completed-record TTL its metadata names (one
        ``STREAM.INFO``; a bucket that cannot be read yet means no TTL, and the store still works)."""
        try:
            with nats_boundary():
                info = await js.stream_info(names.ADS_BUCKET_STREAM)
        except GameadError:
            return cls(nc, js)
        store = cls(nc, js, final_ttl=final_record_ttl(info))
        store.scope = bucket_scope(info.created)
        return store

    def follow(self, created: Mapping[str, datetime | None]) -> None:
        """:attr:`scope` from a listing of the streams (stream → when it was made: the API's topology watch, each
        check): the bucket made again under a running node (deleted by hand, a wipe) is a new scope at once, so its
        cache never answers the old bucket's ads (leftout60: for ``cache.ttl``, 300 s); None while it is missing."""
        self.scope = records_scope(created)

    @property
    def timeout(self) -> float:
        """Seconds a write waits for its ack (the constructor's ``timeout``)."""
        return self._timeout

    def _ttl_of(self, record: AdRecord) -> float | None:
        return self.final_ttl if record.status in FINAL_STATUSES else None

    async def _put(self, record: AdRecord, last: int, payload: bytes | None = None) -> int:
        """One compare-and-set put of ``record`` (``payload``: its :func:`encode`, if the caller has it) over
        revision ``last`` (0 = the key must be new), with the final-record TTL when it applies, a busy answer
        tried again (:func:`gamead_core.store.cas.publish_cas`); returns the new revision. Raises nats-py's
        ``KeyWrongLastSequenceError`` when it lost (decided, as ``kv.update`` does), :class:`QueueUnavailable` when
        still busy, the other ``APIError`` s of the ack, ``asyncio.TimeoutError`` after ``timeout``."""
        headers = write_headers(last, self._ttl_of(record), origin=None if last else self.origin)
        [answer] = await cas.publish_cas(self.js, [(names.kv_subject(names.ADS_BUCKET, record.id),
                                                    encode(record) if payload is None else payload, headers)],
                                         timeout=self._timeout)
        if isinstance(answer, Ack):
            return answer.seq
        if _lost(answer):
            raise nats.js.errors.KeyWrongLastSequenceError(description=answer.description) from answer  # type: ignore
        raise _busy(answer) if cas.verdict(answer) == cas.BUSY else answer

    async def send_create(self, ad_id: str, payload: bytes) -> asyncio.Future[Ack]:
        """The create-only put of the fresh ``queued`` record of ``ad_id`` (``payload``: its :func:`encode` bytes) sent,
        its ack's future returned (:func:`publish_acked`; raises nats-py's errors): the submit path awaits it."""
        headers, lines = create_heads(self.origin)
        return await publish_acked(self.js, names.kv_subject(names.ADS_BUCKET, ad_id), payload, headers=headers,
                                   timeout=self._timeout, lines=lines)

    async def _entry(self, kv: KeyValue, ad_id: str) -> KeyValue.Entry | None:
        """The live entry of ``ad_id`` as ``kv`` reads it; None if missing, deleted, purged or expired."""
        try:
            entry = await kv.get(ad_id)
        except nats.js.errors.KeyNotFoundError:  # also covers deleted / purged keys
            return None
        if entry.value is None:  # an expiry marker reads as an entry without a value
            return None
        return entry

    async def get(self, ad_id: str, *, consistent: bool = False) -> Versioned:
        """The record of ``ad_id``; raises :class:`NotFound`.

        A direct read (any replica, :func:`~gamead_core.queue.direct_read.hedged`) first; if it finds nothing
        or no answer, or ``consistent`` is set, the leader is asked: a record is never missing as a replica lags."""
        with nats_boundary():
            entry = None
            if not consistent:
                try:
                    entry = await self._entry(self._kv, ad_id)
                except (nats.errors.NoRespondersError, nats.errors.TimeoutError) as exc:  # no direct gets (or
                    fell_back(self._kv._stream, exc, clustered=clustered_of(self._nc))  # no stream); a replica
                    # on a stopped server, or one slow server: the leader
            if entry is None:
                entry = await self._entry(self._leader, ad_id)
        if entry is None:
            raise NotFound(f"no ad with id {ad_id!r}")
        return Versioned(decode_stored(ad_id, entry.value, entry.revision or 0), entry.revision or 0)  # type: ignore

    async def create(self, record: AdRecord, payload: bytes | None = None) -> int:
        """Write a new record; returns its revision. ``payload``: ``encode(record)`` if the caller has it
        already (the submit path encodes once). Raises :class:`Conflict` if the id already has a live
        record, and then the stream leader holds it (a following :meth:`get` sees it). A key whose record was
        deleted or purged is written again."""
        key = record.id
        with nats_boundary():
            for _ in range(CREATE_TRIES):
                try:
                    return await self._put(record, 0, payload)
                except nats.js.errors.KeyWrongLastSequenceError as exc:
                    if await self._entry(self._leader, key) is not None:
                        raise Conflict(f"ad {key} already exists") from exc
                    last = await self._tombstone(key)
                    if last is not None:  # deleted or purged before: write over the marker
                        try:
                            return await self._put(record, last, payload)
                        except nats.js.errors.KeyWrongLastSequenceError:
                            continue
                    await asyncio.sleep(CREATE_PAUSE)  # the write that won is not applied yet: look again
            raise Conflict(f"ad {key} kept changing while being created")

    async def _tombstone(self, key: str) -> int | None:
        """Revision of the delete/purge marker that ``key`` has at the leader, if that is what it has."""
        try:
            await self._leader.get(key)
        except nats.js.errors.KeyNotFoundError as exc:
            entry = getattr(exc, "entry", None)
            return getattr(entry, "revision", None)
        return None

    async def create_many(self, records: list[AdRecord], payloads: list[bytes]) -> list[int | GameadError]:
        """Create fresh records (ids never used, e.g. new ULIDs) pipelined: every create-only put is sent before
        any ack is awaited, the acks gathered with one deadline for all (:func:`cas.publish_cas`). One result per
        record, in order: its revision, or the gamead error it met (:class:`Conflict` if the id had a record,
        :class:`QueueUnavailable` for an ack that did not come within ``timeout``, :class:`StorageFailed` …).
        ``payloads``: the records' :func:`encode`. Never raises for one record. Unlike :meth:`create`, a key
        with a delete marker is not written over: fresh ids have none."""
        answers = await cas.publish_cas(self.js, [
            (names.kv_subject(names.ADS_BUCKET, r.id), p, write_headers(0, self._ttl_of(r), origin=self.origin))
            for r, p in zip(records, payloads, strict=True)], timeout=self._timeout)
        return [a.seq if isinstance(a, Ack) else _translated(a) for a in answers]

    async def create_queued_many(self, ad_ids: list[str], payloads: list[bytes]) -> list[int | GameadError]:
        """:meth:`create_many` for fresh ``queued`` records by id and encoded bytes (the batch path, no
        :class:`AdRecord`: :mod:`gamead_core.store.queued_json`): the same writes (no TTL), one header dict for all."""
        headers, prefix = write_headers(0, None, origin=self.origin), names.kv_prefix(names.ADS_BUCKET)
        answers = await cas.publish_cas(
            self.js, [(prefix + i, p, headers) for i, p in zip(ad_ids, payloads, strict=True)], timeout=self._timeout)
        return [a.seq if isinstance(a, Ack) else _translated(a) for a in answers]

    async def withdraw_many(self, withdrawals: list[tuple[str, int | None]]) -> list[GameadError | None]:
        """Delete the records of fresh ids, pipelined (sent back to back, acks awaited together:
        :func:`cas.publish_cas`): the delete markers (ADR-8 ``KV-Operation: DEL``, with the final-record TTL) that
        settle a 503'd submit (:mod:`gamead_core.unsettled`). ``withdrawals``: ``(ad_id, revision)`` pairs;
        ``revision`` None deletes whatever the revision (never a create whose ack did not come: the reaper may own
        it by then, attack33b F1; :mod:`gamead_core.store.create_fence` reads it and deletes it by compare-and-set
        only while it is as the API wrote it); an int deletes only a record still at that revision
        (one whose message JetStream refused: the record is taken back unless it changed since). The markers carry
        the final-record TTL (when the bucket names one), so refused submits under a full queue leave nothing
        that outlives a finished ad's record. One result per pair, in order: None once settled (deleted, or a
        compare-and-set that lost: the record changed, someone else owns it now), else the gamead error met.
        Raises a gamead error only if nothing could be sent (:func:`nats_boundary`)."""
        with nats_boundary():
            answers = await cas.publish_cas(self.js, [
                (names.kv_subject(names.ADS_BUCKET, ad_id), b"", write_headers(
                    revision, self.final_ttl, delete=True, origin=self.origin or "api"))
                for ad_id, revision in withdrawals], timeout=self._timeout)
        return [None if isinstance(a, Ack) or _lost(a) else _translated(a) for a in answers]

    async def update(self, record: AdRecord, revision: int) -> int:
        """Compare-and-set: write ``record`` only if the stored revision is still ``revision``; returns the new
        revision. Raises :class:`Conflict` if someone wrote it first."""
        with nats_boundary():
            try:
                return await self._put(record, revision)
            except nats.js.errors.KeyWrongLastSequenceError as exc:
                raise Conflict(f"ad {record.id} changed since revision {revision}") from exc

    async def update_many(self, writes: list[tuple[str, bytes, int]], *, final: bool = False
                          ) -> list[int | GameadError]:
        """Compare-and-set updates pipelined (issue 14.2, the worker's settle rounds): every write of
        ``writes`` (an ad id, its record's bytes as :func:`encode` writes them, and the revision it must still be
        at; ``final``: the records are final, so the final-record TTL applies) is published before any ack is
        awaited, the acks gathered on the connection's one reply subscription with one deadline for all
        (:func:`cas.publish_cas`). One result per write, in order: the new revision, :class:`Conflict` when the
        record changed since its revision (lost: :func:`gamead_core.store.cas.verdict`; a busy answer is tried
        again first: :func:`~gamead_core.store.cas.publish_cas`), or the gamead error of a write that failed or
        stayed busy (:class:`QueueUnavailable` for an ack that did not come within ``timeout`` …). Never raises
        for one write."""
        ttl = self.final_ttl if final else None
        answers = await cas.publish_cas(self.js, [
            (names.kv_subject(names.ADS_BUCKET, ad_id), payload, write_headers(revision, ttl))
            for ad_id, payload, revision in writes], timeout=self._timeout)
        return [a.seq if isinstance(a, Ack) else _update_error(a) for a in answers]

    async def mutate(
        self, ad_id: str, change: Callable[[AdRecord], AdRecord | None], *, attempts: int = 5
    ) -> Versioned | None:
        """Read-modify-write with retries on a lost compare-and-set (each retry reads from the stream leader).

        ``change`` returns the new record, or ``None`` to leave it as it is (the call then returns None). A None on
        the first (direct, maybe a lagging replica's) read is asked again of the leader's copy when that differs: a
        stale ``dead`` made a replayed ad's dead-lettering a no-op (attack40b F2, left ``queued`` unsaid).
        Raises :class:`NotFound` or, after ``attempts`` lost races, :class:`Conflict`.
        """
        for attempt in range(attempts):
            current = await self.get(ad_id, consistent=attempt > 0)
            new = change(current.record)
            if new is None and not attempt:  # a replica's copy may lag: the leader's decides when it differs
                lead = await self.get(ad_id, consistent=True)
                if lead.revision != current.revision:
                    current, new = lead, change(lead.record)
            if new is None:
                return None
            try:
                return Versioned(new, await self.update(new, current.revision))
            except Conflict:
                continue
        raise Conflict(f"ad {ad_id} kept changing; gave up after {attempts} attempts")

    async def scan(self, *, status: AdStatus | None = None, priority: int | None = None, limit: int = 50,
                   scan_limit: int = 10_000, timeout: float = 2.0) -> list[AdRecord]:
        """The newest records matching the filters among the last ``scan_limit`` written, newest first
        (:func:`gamead_core.store.listing.newest_records`)."""
        return await newest_records(self.js, status=status, priority=priority, limit=limit,
                                    scan_limit=scan_limit, timeout=timeout)

    async def page(self, *, before: str | None = None, limit: int = 50, **filters: object) -> RecordsPage:
        """:meth:`scan` a page at a time: the records older than the cursor ``before``, and the next cursor
        (:func:`gamead_core.store.listing.records_page`; ``filters``: its status, priority, scan_limit)."""
        js = self.reads or self.js  # the API's reads connection (gamead_core.api.read_conn)
        return await records_page(js, before=before, limit=limit, **filters)  # type: ignore[arg-type]
