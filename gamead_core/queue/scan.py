"""Reading a stream in order, once, from a start sequence or time up to its end (a pull consumer asked a slice at
a time, :mod:`gamead_core.queue.pull_feed`: bounded bytes in flight, left39a; an ordered consumer before).

Two rules (fix35e), both so that a reader never takes part of a stream for all of it:

- **A stall is an error.** ``timeout`` seconds without a message before the end is not the end: the reader asks
  NATS whether messages it has not read are still there (the next one on its subject, or its consumer's
  pending count) and, if so, raises :class:`ScanIncomplete` (NATS not answering: :class:`QueueUnavailable`).
  Before, the read just stopped: a DLQ replay selected part of the DLQ and said ``succeeded``, ``GET /ads``
  listed part of its window, the reaper missed records.
- **A KV bucket is read to its end as it is when the read gets there** (``follow``). With one revision kept per
  key, a key rewritten while the read runs gets a sequence past the end measured at the start and its old one is
  removed: a read that stops at that end never sees the key (fix35b: ``GET /v1/jobs`` listed 2 of 3 running
  jobs). With ``follow`` the read goes on past that end while messages are pending, at most ``follow`` messages
  more (more than that: :class:`ScanIncomplete`, the bucket changes faster than it is read), so a key can come
  twice, its older value first: the caller keeps the last one per key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from gamead_core.errors import QueueUnavailable
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.pull_feed import PullFeed, pull_feed
from gamead_core.queue.read_end import opened, unsubscribe_quietly

#: messages a ``follow`` read may take past the end measured at its start, besides as many as it read before it
FOLLOW_MIN = 1_000


class ScanIncomplete(QueueUnavailable):
    """A read of a whole stream stopped before the stream's end (:func:`read_stream`): no message came for its
    timeout while NATS still held some it had not delivered (a stalled or overloaded server), its pull requests got a
    status it cannot go on after (its consumer deleted: :func:`stalled` names it), or a KV bucket kept changing
    faster than it was read. Nothing read is to be used as the whole: retry. 503 ``scan_incomplete``
    with ``Retry-After``; ``details`` ``{"stream", "read"}``; the message names no server."""

    code = "scan_incomplete"
    client_message = None


def follow_bound(span: int) -> int:
    """How many messages a ``follow`` read of ``span`` sequences may read past its first end: ``span`` or
    :data:`FOLLOW_MIN`, the larger (pure)."""
    return max(FOLLOW_MIN, span)


def position(msg: Msg) -> tuple[int, int]:
    """``(stream sequence, messages pending after it)`` of a JetStream delivery, from its reply subject
    (``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>``, or ADR-15's form with domain and
    account hash), else nats-py's ``msg.metadata``. The reply's two numbers alone: ``msg.metadata`` also makes
    a datetime and four objects, a third of a headers-only read's time (pure)."""
    tokens = (msg.reply or "").split(".")
    i = 5 if len(tokens) == 9 else 7 if len(tokens) >= 11 else None
    if i is not None and tokens[0] == "$JS" and tokens[1] == "ACK":
        try:
            return int(tokens[i]), int(tokens[i + 3])
        except ValueError:
            pass
    meta = msg.metadata
    return meta.sequence.stream, meta.num_pending


async def read_stream(
    js: JetStreamContext, stream: str, subject: str, *, start_seq: int | None = None, tail: int | None = None,
    timeout: float = 5.0, start_time: datetime | None = None, headers_only: bool = False, follow: bool = False,
) -> AsyncIterator[Msg]:
    """Yield the messages of ``stream`` on ``subject`` from ``start_seq`` (or the last ``tail`` sequences, or the
    first stored at or after ``start_time``, an aware datetime) to the end as it was when the call started (with
    ``follow``, for a KV bucket: as it is when the read reaches it, the module doc); with ``headers_only``,
    without their bodies. Raises :class:`ScanIncomplete` when ``timeout`` seconds pass without a message while
    messages to read remain; a NATS error (its consumer not created in time, too) leaves as the gamead error
    (:func:`nats_boundary`)."""
    with nats_boundary():
        info = await js.stream_info(stream)
    last = info.state.last_seq
    if info.state.messages == 0:
        return
    start = max(info.state.first_seq, start_seq or 1)
    if tail is not None:
        start = max(start, last - tail + 1)
    if start > last:
        return
    if start_time is None and await none_to_read(js, stream, subject, start, None if follow else last):
        return
    extra = follow_bound(last - start + 1) if follow else 0
    with nats_boundary():  # its consumer's creation timing out is QueueUnavailable too, not nats-py's own error
        sub = await opened(pull_feed(  # (attack34a F2: a job failed "TimeoutError: nats: timeout")
            js, subject, stream=stream,  # bounded bytes in flight (gamead_core.queue.pull_feed, left39a)
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
                                  headers_only=headers_only or None) if start_time is None else
            ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=start_time,
                           headers_only=headers_only or None),
        ))
    read, past = 0, 0  # messages read; of them, past the first end
    at = start - 1 if start_time is None else None  # the last sequence read (None: not known)
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=timeout)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                if await still_unread(js, sub, stream, subject, at, None if follow else last, read):
                    raise stalled(sub, stream, read, timeout) from None
                return
            yield msg
            read += 1
            at, pending = position(msg)
            if pending == 0 or (not follow and at >= last):
                return
            past += at > last
            if past > extra:
                raise ScanIncomplete(
                    f"stream {stream} kept changing faster than it was read: {read} messages read, "
                    f"{pending} still pending; retry", details={"stream": stream, "read": read})
    finally:
        await unsubscribe_quietly(sub)


def stalled(sub: PullFeed, stream: str, read: int, timeout: float) -> ScanIncomplete:
    """The error of a read of ``stream`` that stopped before its end after ``read`` messages, its feed ``sub`` having
    ended or given nothing for ``timeout`` seconds: it says which, and the feed's state then (pullfeed60: a read
    that had ended at once said "30 s without one", and nothing of why)."""
    then = f"its feed ended ({sub.why()})" if sub.ended else f"{timeout:g} s without one ({sub.why()})"
    return ScanIncomplete(f"the read of stream {stream} stopped before its end: {read} messages read, then {then} "
                          "while NATS still held more; nothing partial was used, retry",
                          details={"stream": stream, "read": read})


async def none_to_read(js: JetStreamContext, stream: str, subject: str, start: int, end: int | None) -> bool:
    """True if ``stream`` holds no message on ``subject`` from sequence ``start`` to ``end`` (None: its end): a
    consumer's read of them would wait its whole timeout for the first (attack59: the jobs bucket holding no job
    document, only a claim or a work list, made every ``GET /v1/jobs`` take 10 s). One ``STREAM.MSG.GET``; raises
    the gamead error of a NATS that does not answer."""
    with nats_boundary():
        try:
            nxt = await js.get_msg(stream, seq=start, subject=subject, next=True)
        except nats.js.errors.NotFoundError:
            return True
    return end is not None and (nxt.seq or 0) > end


async def still_unread(js: JetStreamContext, sub: PullFeed, stream: str, subject: str, at: int | None,
                       end: int | None, read: int = 0) -> bool:
    """True if ``stream`` still holds a message on ``subject`` after sequence ``at`` (None: ask the consumer
    ``sub`` how many it has pending) and not past ``end`` (None: anywhere), asked once a read waited its timeout
    for the next. Raises :class:`ScanIncomplete` if it holds none because its front was removed past ``at`` (its
    first sequence now after ``at + 1``: a purge, or its limits removing the oldest faster than the read went;
    ``read``: messages read, for the error): what the read took matches no state of the stream (attack39c F3: a
    purge mid-read of 10,000 messages ended a "complete" read of the 2,566 it had been sent). Raises the gamead
    error of a NATS that does not answer (:func:`nats_boundary`)."""
    with nats_boundary():
        if at is None:
            return (await sub.consumer_info()).num_pending > 0
        try:
            nxt = await js.get_msg(stream, seq=at + 1, subject=subject, next=True)
        except nats.js.errors.NotFoundError:
            first = (await js.stream_info(stream)).state.first_seq
            if first > at + 1:
                raise ScanIncomplete(
                    f"stream {stream} lost messages this read had not reached (it now starts at sequence {first}, "
                    f"the read was at {at}: purged, or its oldest removed by its limits): {read} messages read; "
                    "nothing partial was used, retry", details={"stream": stream, "read": read}) from None
            return False
    return end is None or (nxt.seq or 0) <= end
