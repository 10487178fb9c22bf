"""A KV bucket's keys from a sequence on, as of one sequence, each at its revision when read: the whole-bucket read
of ``GET /ads`` and ``GET /v1/jobs`` (attack35 F1; list37).

Why not a snapshot on the server alone: a gamead bucket keeps one revision per key, so a key rewritten after a
sequence S has no revision at or before S left, and a direct get ``multi_last`` with ``up_to_seq`` S (ADR-31)
leaves such a key out (nats-server 2.15.1: keys k0-k999 written at sequences 1-1,000, k0 rewritten at 1,001,
``up_to_seq`` 5 answered k1-k4, without k0); and ``multi_last`` answers ``413`` past 1,024 subjects. Before,
the read took every record message in stream order and went on past its end while records were rewritten ahead
of it (``follow``): a bucket written faster than records were read and decoded (~6-9k writes/s during a storm of
2,900 ads/s) made it give up, 503 ``scan_incomplete`` in 2 of ~5 runs.

First (list37), the bodies in stream order from the start sequence to the bucket's end as of the start
(:func:`~gamead_core.queue.in_order.read_in_order`): on a quiet bucket that is the whole read, one pass (40,000
records: the two steps alone cost ~1.3x e83dc32's one pass, a value by direct get carrying five headers nats-py
parses in Python). A key rewritten meanwhile has left that stretch for a sequence past its end; from the last
sequence read on, the rest is read in the two steps below, which alone have to keep up with the writers:

1. **The keys**, headers only (the bodies stay on the server; nothing decoded; read from the feed, no task per
   message): a pull consumer from the last sequence the first pass read to the first message after which
   nothing is pending (:func:`read_keys`; 24,000 keys at 11-15k/s against 7-9k/s for ``read_stream`` on the same
   loaded box). A key only ever moves forward (its rewrite takes a new, higher sequence), so when the consumer
   delivers a message with nothing pending after it, every key then in the bucket past the first pass has been
   delivered at its current sequence or an older one: with the first pass, the key set as of that sequence.
2. **The values**, by key: direct get ``multi_last`` with the keys themselves, :data:`MULTI_LAST_MAX` at a time
   (each request read at one instant by the server), in the order of their sequences. A key comes once, at its
   revision when its request is read (the one of step 1 or a later one); a key gone since (deleted, expired)
   comes as a purge marker (no data, ``KV-Operation: PURGE``: the caller drops what it read of it before), or as
   its delete marker. A key a request left out (gone, a replica behind the leader, an answer cut at the server's
   ``max_bytes``) is asked of the stream leader, one get, before it counts as gone.

3. **Writers faster than step 1** (it reads more than :func:`~gamead_core.queue.scan.follow_bound` past the end
   it measured: :class:`KeysOutran`; ci50, a loaded CI machine): the keys as the server's subject index has them
   at one instant (:mod:`gamead_core.queue.key_list`), if the stream holds at most :data:`INDEX_AT_MOST` times
   the window's messages in subjects, then step 2 for them all, dropping those last written before the window.

A key read in the first pass and again in the steps comes twice, its later revision last: the caller keeps the
last one per key (as for ``follow``). Memory: the keys past the first pass (~50 bytes each) and one request's
values (:data:`MULTI_LAST_MAX` records) or three :data:`~gamead_core.queue.feed_room.REQUEST_BYTES` at a time. A
bucket without direct gets is read as before (values in stream order, ``follow``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StreamInfo

from gamead_core import names
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.direct_batch import (
    MULTI_LAST_MAX,
    BatchEnd,
    DirectGetsOff,
    Entry,
    direct_batch,
)
from gamead_core.queue.in_order import read_in_order
from gamead_core.queue.key_list import keys_now
from gamead_core.queue.pull_feed import pull_feed
from gamead_core.queue.read_end import opened, unsubscribe_quietly
from gamead_core.queue.scan import (
    ScanIncomplete,
    follow_bound,
    none_to_read,
    position,
    read_stream,
    still_unread,
)


class KeysOutran(ScanIncomplete):
    """:func:`read_keys` read more than its bound past the end it measured: writers outran it (not a stall)."""


async def read_keys(js: JetStreamContext, stream: str, subject: str, *, start_seq: int | None = None,
                    timeout: float = 5.0, info: StreamInfo | None = None) -> dict[str, int]:
    """The keys (stream subjects) of ``stream`` on ``subject`` with a message at or after ``start_seq``, as of the
    first sequence after which nothing was pending (step 1 of the module doc), each with the sequence it was read
    at, in stream order.
    Raises :class:`~gamead_core.queue.scan.ScanIncomplete` when no message came for ``timeout`` seconds while
    NATS held more, or when the keys kept moving past the end measured at the start for more than
    :func:`~gamead_core.queue.scan.follow_bound` messages; the gamead error of a failed NATS request. ``info``:
    the stream's info if the caller has just read it (one request fewer)."""
    if info is None:
        with nats_boundary():
            info = await js.stream_info(stream)
    state = info.state
    last, start = state.last_seq, max(state.first_seq, start_seq or 1)
    keys: dict[str, int] = {}
    if state.messages == 0 or start > last or await none_to_read(js, stream, subject, start, None):
        return keys
    extra = follow_bound(last - start + 1)
    at, read, past = start - 1, 0, 0  # the last sequence read; messages read; of them, past ``last``
    with nats_boundary():  # bounded bytes in flight (gamead_core.queue.pull_feed, left39a)
        sub = await opened(pull_feed(js, subject, stream=stream,
                                     config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                                           opt_start_seq=start, headers_only=True)))
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout)
            except nats.errors.TimeoutError:
                if await still_unread(js, sub, stream, subject, at, None, read):
                    raise ScanIncomplete(
                        f"the read of stream {stream}'s keys stopped before its end: {read} read, then {timeout:g} s "
                        "without one while NATS still held more; retry", details={"stream": stream, "read": read}
                    ) from None
                break  # nothing after the last one read: the end
            at, pending = position(msg)
            keys.pop(msg.subject, None)  # read again (rewritten meanwhile): its place is its last sequence
            keys[msg.subject] = at
            read, past = read + 1, past + (at > last)
            if read % 256 == 0:
                await asyncio.sleep(0)  # messages already in the feed are read without a wait: let others run
            if pending == 0 or past > extra:
                break
    finally:
        await unsubscribe_quietly(sub)
    if past > extra:
        raise KeysOutran(f"stream {stream}'s keys kept moving faster than they were read: {read} read; retry",
                         details={"stream": stream, "read": read})
    return keys


async def read_values(js: JetStreamContext, stream: str, keys: list[str], *,
                      timeout: float = 5.0) -> AsyncIterator[Entry]:
    """Yield the current message of each of ``keys`` (stream subjects, each at most once), a purge marker (no
    data, ``KV-Operation: PURGE``, sequence 0) for one that has none left, :data:`MULTI_LAST_MAX` keys per direct
    get (step 2 of the module doc). Raises
    :class:`~gamead_core.queue.direct_batch.DirectGetsOff` for a stream without direct gets and the gamead error
    of a failed read."""
    for i in range(0, len(keys), MULTI_LAST_MAX):
        chunk = keys[i:i + MULTI_LAST_MAX]
        unanswered = set(chunk)
        request: dict[str, Any] = {"multi_last": chunk}
        async with aclosing(direct_batch(js._nc, stream, request, BatchEnd(), timeout=timeout)) as batch:
            async for entry in batch:
                unanswered.discard(entry.subject)
                yield entry
        for subject in (s for s in chunk if s in unanswered):  # gone, or a replica behind, or a batch cut short
            entry = await _from_leader(js, stream, subject)
            yield entry if entry is not None else Entry(subject, 0, {names.HDR_KV_OPERATION: "PURGE"}, b"")


async def _from_leader(js: JetStreamContext, stream: str, subject: str) -> Entry | None:
    """The last message on ``subject`` as the stream leader has it (``STREAM.MSG.GET``), None if it has none: a
    key a direct get left out, which a replica behind the leader answers so (README "Consistent record reads on a
    cluster"), is only taken for gone once the leader says so."""
    with nats_boundary():
        try:
            raw = await js.get_last_msg(stream, subject)
        except nats.js.errors.NotFoundError:
            return None
    return Entry(raw.subject or subject, raw.seq or 0, dict(raw.headers or {}), raw.data or b"")


#: a window's keys are asked of the server's index when the stream holds at most this many subjects a message of the
#: window (:mod:`gamead_core.queue.key_list`): the values of keys outside the window are read and dropped
INDEX_AT_MOST = 4

#: reads of the keys past an end their consumer said, at most (:func:`_keys_to_the_end`): an ad is rewritten two or
#: three times in a row (queued, processing, completed), so one rewritten at the end of every one of them is none
GO_ON_AT_MOST = 5


async def _more_after(js: JetStreamContext, stream: str, subject: str, at: int) -> bool:
    """Whether ``stream`` holds a message on ``subject`` after sequence ``at`` (one ``STREAM.MSG.GET``,
    ``next_by_subj``, asked of the leader)."""
    with nats_boundary():
        try:
            await js.get_msg(stream, seq=at + 1, subject=subject, next=True)
        except nats.js.errors.NotFoundError:
            return False
    return True


async def _keys_to_the_end(js: JetStreamContext, stream: str, subject: str, at: int, timeout: float) -> dict[str, int]:
    """:func:`read_keys` from ``at + 1``, then again from the last sequence read while the stream holds a message on
    ``subject`` after it (at most :data:`GO_ON_AT_MOST` reads). A consumer's "nothing pending" is the server's count
    as it sends a message, not a look at what follows: a key rewritten as the read ended had its revision ahead of
    the read removed and its new one past that end, unread (session 49: ``GET /ads`` left out the 4 ads a worker
    was running and said ``complete: true``; 11 of 300 reads of a bucket rewritten as a worker does missed a key;
    0 of 300 now). A new revision is stored before the old one is removed, so the look after a read finds it.
    Under a steady flow of new keys (or a storm a later read cannot catch up with) the reads stop there: those are
    keys written after the read began."""
    keys: dict[str, int] = {}
    for again in range(GO_ON_AT_MOST):
        try:
            more = await read_keys(js, stream, subject, start_seq=at + 1, timeout=timeout)
        except ScanIncomplete:
            if again:  # a storm of writes past the end read: what came after the read began, as before
                break
            raise
        for key, seq in more.items():
            keys.pop(key, None)  # read again (rewritten meanwhile): its place is its last sequence
            keys[key] = seq
        at = max(at, *keys.values()) if keys else at
        if not await _more_after(js, stream, subject, at):
            break
    return keys


async def read_snapshot(js: JetStreamContext, stream: str, subject: str, *, start_seq: int | None = None,
                        timeout: float = 5.0) -> AsyncIterator[Any]:
    """Yield the current message of every key of ``stream`` on ``subject`` with a message at or after
    ``start_seq`` (the module doc: the keys as of one sequence, each at its revision when read; one rewritten
    during the read may come twice, its later revision last, or last as a purge marker when it is gone: keep the
    last one per key). Each has ``subject``, ``headers`` and ``data`` (nats-py's ``Msg`` from the first pass, an
    :class:`~gamead_core.queue.direct_batch.Entry` from the steps; for a stream without direct gets, ``Msg`` in
    stream order with ``follow``). Raises :class:`~gamead_core.queue.scan.ScanIncomplete` when the bucket could
    not be read to its end, and the gamead error of a failed read."""
    with nats_boundary():
        info = await js.stream_info(stream)
    if not info.config.allow_direct:
        async with aclosing(read_stream(js, stream, subject, start_seq=start_seq, timeout=timeout,
                                        follow=True)) as reads:
            async for msg in reads:
                yield msg
        return
    floor = max(info.state.first_seq, start_seq or 1)  # the window's first sequence
    at, pending = floor - 1, None  # the last sequence read, pending after it
    async with aclosing(read_in_order(js, stream, subject, info, start_seq=start_seq, timeout=timeout)) as bodies:
        async for msg in bodies:
            at, pending = position(msg)
            yield msg
    if pending == 0 and not await _more_after(js, stream, subject, at):  # a quiet bucket: the key set as of it (no
        return  # key read to wait ``timeout`` for a key when only other subjects, a job's work list, came since)
    outside = 0  # entries of a sequence below it are keys outside the window
    try:
        keys = await _keys_to_the_end(js, stream, subject, at, timeout)
    except KeysOutran:  # writers faster than the key read: the keys as the server's index has them, if few enough
        listed = await keys_now(js, stream, subject, at_most=INDEX_AT_MOST * (info.state.last_seq - floor + 1),
                                timeout=timeout)
        if listed is None:
            raise
        keys, outside = dict.fromkeys(listed, 0), floor  # from the index: each at its revision, or out of the window
    if not keys:
        return
    try:
        async with aclosing(read_values(js, stream, list(keys), timeout=timeout)) as values:
            async for entry in values:
                if not 0 < entry.seq < outside:  # a key last written before the window (index keys only)
                    yield entry
        return
    except DirectGetsOff:  # allow_direct turned off since: the rest in stream order (a key twice: last wins)
        pass
    async with aclosing(read_stream(js, stream, subject, start_seq=at + 1, timeout=timeout,
                                    follow=True)) as reads:
        async for msg in reads:
            yield msg
