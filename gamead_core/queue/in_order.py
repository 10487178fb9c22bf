"""A stream's messages, bodies and all, in stream order from a sequence to the end as it was when the read began:
the first step of a whole-bucket read (:func:`gamead_core.queue.snapshot.read_snapshot`; list37).

Like :func:`gamead_core.queue.scan.read_stream` without ``follow`` (a stall is
:class:`~gamead_core.queue.scan.ScanIncomplete`, never the end), read from a pull feed
(:mod:`gamead_core.queue.pull_feed`, left39a): the feed's messages come in by nats-py's read loop into the feed, not one
task each (nats-py's own ``next_msg`` made a task, a ``wait_for`` and a uuid per message, ~40 % of the client CPU of
reading 40,000 records: py-spy, session 37), and the feed asks nats-server for at most two requests of ``REQUEST_BYTES``
at a time, so memory stays bounded whatever the reader's pace (before: an ordered consumer's callback held back by a
bounded queue, with up to 32 MiB unsent a consumer: its flow-control window). It gives the event loop a turn every
:data:`YIELD_EVERY` messages (messages already in the feed are read without a wait, so other requests of the API would
otherwise wait for the pass).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StreamInfo

from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.pull_feed import pull_feed
from gamead_core.queue.read_end import opened, unsubscribe_quietly
from gamead_core.queue.scan import none_to_read, position, stalled, still_unread

YIELD_EVERY = 64  #: messages read between two turns given to the event loop's other tasks


async def read_in_order(js: JetStreamContext, stream: str, subject: str, info: StreamInfo, *,
                        start_seq: int | None = None, timeout: float = 5.0) -> AsyncIterator[Msg]:
    """Yield the messages of ``stream`` on ``subject`` (``info``: its stream info, read just before) from
    ``start_seq`` (None: its first) in stream order, to its last sequence in ``info`` or the first message with
    nothing pending after it, whichever comes first; a message rewritten meanwhile is not yielded where it was (a KV
    key's new revision lies past that end: the caller reads on from the last sequence yielded, ``position(msg)``).
    Raises :class:`~gamead_core.queue.scan.ScanIncomplete` when ``timeout`` seconds pass without a message while
    NATS still holds one before that end, and the gamead error of a failed NATS request."""
    state = info.state
    last, start = state.last_seq, max(state.first_seq, start_seq or 1)
    if state.messages == 0 or start > last or await none_to_read(js, stream, subject, start, last):
        return
    with nats_boundary():  # bounded bytes in flight, however slow the reader (pull_feed, left39a)
        sub = await opened(pull_feed(js, subject, stream=stream,
                                     config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                                           opt_start_seq=start)))
    at, read = start - 1, 0
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout)
            except nats.errors.TimeoutError:
                if await still_unread(js, sub, stream, subject, at, last, read):
                    raise stalled(sub, stream, read, timeout) from None
                return
            at, pending = position(msg)
            read += 1
            if read % YIELD_EVERY == 0:  # messages already here are read without a wait: let others run
                await asyncio.sleep(0)
            yield msg
            if pending == 0 or at >= last:
                return
    finally:
        await unsubscribe_quietly(sub)
