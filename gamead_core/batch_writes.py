"""The two writes of ``POST /ads/batch`` (:meth:`gamead_core.intake.Intake.submit_many`) as JetStream atomic batches
(:mod:`gamead_core.queue.atomic`, NATS ADR-50): the ``queued`` records in one batch to the records' bucket, then the
work messages in one batch per work stream, each batch acknowledged once instead of once per ad.

Each function answers exactly what its message-by-message counterpart answers (:meth:`AdStore.create_queued_many`,
:func:`gamead_core.queue.publish.publish_ads`): one result per ad, in order, so ``submit_many`` settles the results
as before (refused → the ad's own error; unanswered → settled in the background by :mod:`gamead_core.unsettled`).

* committed: each ad's revision (records) or :class:`Published` (messages), from the batch's contiguous sequences;
* refused (nothing stored): the same ads are written again message by message, so each gets its own answer (a
  full stream may take some of them; a stream without ``allow_atomic`` is written so for a while). In that second
  try a message JetStream calls a duplicate can only be one the refused batch stored after all (the ids are fresh
  ULIDs; an R1 stream answers an error for the commit message if storing *it* fails, after the messages before
  it were stored): it is answered queued (not a duplicate); a record that already exists is read back, and
  answered created (its revision) if it is exactly the one sent, else ``Conflict`` (someone else's: kept), and
  ``QueueUnavailable`` if it cannot be read back (withdrawn in the background, as an unanswered create is);
* unanswered (any may be stored): every ad of the batch gets the ``QueueUnavailable`` of an unanswered publish.

Where atomic batches are not used (``api.batch_atomic: false``, a server older than 2.12.1, a stream that refused
them lately) the message-by-message writes run as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.errors import Conflict, GameadError, QueueUnavailable
from gamead_core.queue.atomic import MAX_BATCH, AtomicBatches, BatchRefused, BatchUnanswered, publish_batch
from gamead_core.queue.connection import translate
from gamead_core.queue.partitions import partition_of
from gamead_core.queue.publish import Outgoing, Published, publish_ads
from gamead_core.store.ads import AdStore, decode, write_headers

_MSG_ID, _AD_ID, _REVISION = names.HDR_MSG_ID, names.HDR_AD_ID, names.HDR_RECORD_REVISION


def _unanswered(exc: BatchUnanswered) -> GameadError:
    """The error of one ad of an unanswered batch: what an unanswered publish of it would raise (its cause kept, so
    :func:`gamead_core.queue.publish.not_stored` reads it as ambiguous)."""
    if exc.cause is not None:
        out = translate(exc.cause)
        if isinstance(out, GameadError):
            out.__cause__ = exc.cause
            return out
    return QueueUnavailable(str(exc))


def _chunks(indexes: list[int]) -> list[list[int]]:
    return [indexes[k:k + MAX_BATCH] for k in range(0, len(indexes), MAX_BATCH)]


async def create_records(js: JetStreamContext, store: AdStore, atomic: AtomicBatches, ad_ids: list[str],
                         payloads: list[bytes]) -> list[int | GameadError]:
    """:meth:`AdStore.create_queued_many` (fresh ``queued`` records by id and encoded bytes, create-only), in
    atomic batches of up to 1,000 where :class:`AtomicBatches` allows. One result per record, in order: its
    revision, or the gamead error met (the module doc). Never raises for one record."""
    stream = names.ADS_BUCKET_STREAM
    if not atomic.usable(js, stream):
        return await store.create_queued_many(ad_ids, payloads)
    results: list[int | GameadError | None] = [None] * len(ad_ids)
    prefix, headers = names.kv_prefix(names.ADS_BUCKET), write_headers(0, None, origin=store.origin)

    async def one(chunk: list[int]) -> list[int]:
        messages = [(prefix + ad_ids[i], payloads[i], headers) for i in chunk]
        revisions, again = await _one_batch(js, atomic, stream, messages, store.timeout, chunk, results)
        for i, revision in zip(chunk, revisions):
            results[i] = revision
        return again

    again = [i for left in await asyncio.gather(*map(one, _chunks(list(range(len(ad_ids)))))) for i in left]
    if again:
        answers = await store.create_queued_many([ad_ids[i] for i in again], [payloads[i] for i in again])
        for i, answer in zip(again, answers, strict=True):
            results[i] = await _ours(store, ad_ids[i], payloads[i], answer) if isinstance(answer, Conflict) \
                else answer
    return results  # type: ignore[return-value]  # every slot is filled


async def _one_batch(js: JetStreamContext, atomic: AtomicBatches, stream: str,
                     messages: list[tuple[str, bytes, dict[str, str]]], timeout: float, chunk: list[int],
                     results: list[Any]) -> tuple[list[int], list[int]]:
    """``messages`` (one per index of ``chunk``) as one atomic batch on ``stream``. Returns ``(sequences, [])``
    once stored; ``([], chunk)`` if the batch was refused (nothing stored: those ads are sent again one by one);
    ``([], [])`` if it went unanswered, each of ``chunk``'s slots in ``results`` then holding that error."""
    try:
        return await publish_batch(js, messages, stream=stream, timeout=timeout), []
    except BatchRefused as exc:
        atomic.refused(stream, exc)
        return [], chunk
    except BatchUnanswered as exc:
        if exc.cause is None:
            atomic.unconfirmed(stream)
        for i in chunk:
            results[i] = _unanswered(exc)
        return [], []


async def _ours(store: AdStore, ad_id: str, payload: bytes, conflict: Conflict) -> int | GameadError:
    """A record create, tried again after a refused batch, found ``ad_id``'s record there: the refused batch's own
    (stored after all: the module doc), whose revision is read from the stream leader and answered, if the record is
    exactly ``payload``; else someone else's, answered ``conflict`` (and never withdrawn). If it cannot be read,
    :class:`QueueUnavailable` (the record may be ours: the caller withdraws it as an unanswered create; a
    ``Conflict`` here left a ``queued`` record without a message behind a ``conflict`` answer, reviewer V9)."""
    try:
        found = await store.get(ad_id, consistent=True)
    except GameadError as exc:
        return QueueUnavailable(f"the record of ad {ad_id} may be stored, but it could not be read back: "
                                f"{exc.message}")
    return found.revision if found.record == decode(payload) else conflict


async def publish_messages(js: JetStreamContext, atomic: AtomicBatches, ads: list[Outgoing], *, timeout: float,
                           partitions: int = 1) -> list[Published | Exception]:
    """:func:`publish_ads` (the ads' work messages, ``Gamead-Record-Revision`` naming their records), in one atomic
    batch (up to 1,000 messages) per work stream where :class:`AtomicBatches` allows. One result per ad, in order:
    its :class:`Published` once stored, else the error met (the module doc). Never raises for one ad."""
    if partitions == 1 and not atomic.usable(js, names.work_stream(0)):  # the common R1 case: as before
        return await publish_ads(js, ads, timeout=timeout)
    results: list[Published | Exception | None] = [None] * len(ads)
    by_partition: dict[int, list[int]] = {}
    for i, ad in enumerate(ads):
        by_partition.setdefault(partition_of(ad.ad_id, partitions) if partitions != 1 else 0, []).append(i)
    again: list[int] = []
    chunks = []
    for part, indexes in by_partition.items():
        if atomic.usable(js, names.work_stream(part)):
            chunks += [(part, chunk) for chunk in _chunks(indexes)]
        else:
            again += indexes

    async def one(part: int, chunk: list[int]) -> list[int]:
        stream, subjects = names.work_stream(part), {}
        messages = []
        for i in chunk:
            ad = ads[i]
            subject = subjects.get(ad.level)
            if subject is None:
                subject = subjects[ad.level] = names.level_subject(ad.level, part)
            headers = {_MSG_ID: ad.ad_id, _AD_ID: ad.ad_id}
            if ad.revision is not None:
                headers[_REVISION] = str(ad.revision)
            messages.append((subject, ad.payload, headers))
        seqs, again = await _one_batch(js, atomic, stream, messages, timeout, chunk, results)
        for i, seq in zip(chunk, seqs):
            results[i] = Published(seq, False)
        return again

    if chunks:
        again += [i for left in await asyncio.gather(*(one(p, c) for p, c in chunks)) for i in left]
    if again:
        answers = await publish_ads(js, [ads[i] for i in again], timeout=timeout, partitions=partitions)
        for i, answer in zip(again, answers, strict=True):
            # a fresh ad's message already there: stored by the refused batch after all (the module doc)
            results[i] = Published(answer.seq, False) if isinstance(answer, Published) else answer
    return results  # type: ignore[return-value]  # every slot is filled
