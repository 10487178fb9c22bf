"""A stream's messages, bodies and all, in stream order from a sequence to the end as it was when the read began:
the first step of a whole-bucket read (:func:`gamead_core.queue.snapshot.read_snapshot`; list37).

Like :func:`gamead_core.queue.scan.read_stream` without ``follow`` (an ordered consumer; a stall is
:class:`~gamead_core.queue.scan.ScanIncomplete`, never the end), but each message is handed over by the
subscription's callback into a bounded queue instead of ``next_msg``: nats-py's ``next_msg`` makes a task, a
``wait_for`` and a uuid per message, ~40 % of the client CPU of reading 40,000 records (py-spy, session 37). The
callback waits while the queue holds :data:`QUEUED_MAX` messages or :data:`QUEUED_BYTES` bytes, so what nats-py has
not handed over is not counted delivered and the consumer's flow control holds nats-server back: memory stays
bounded whatever the reader's pace. It gives the event loop a turn every :data:`YIELD_EVERY` messages (messages
already handed over are read without a wait, so other requests of the API would otherwise wait for the pass).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StreamInfo

from gamead_core.queue.connection import nats_boundary, unsubscribe_quietly
from gamead_core.queue.scan import ScanIncomplete, position, still_unread

QUEUED_MAX = 2_048  #: messages handed over and not yet read, at most (then the callback waits)
QUEUED_BYTES = 8 * 1024 * 1024  #: their bytes, at most (a bucket of big values: fewer at once)
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
    if state.messages == 0 or start > last:
        return
    queue: deque[Msg] = deque()
    queued = 0  # bytes in ``queue``
    arrived, room = asyncio.Event(), asyncio.Event()
    room.set()

    async def hand_over(msg: Msg) -> None:
        nonlocal queued
        while not room.is_set():
            await room.wait()
        queue.append(msg)
        queued += len(msg.data)
        arrived.set()
        if len(queue) >= QUEUED_MAX or queued >= QUEUED_BYTES:
            room.clear()

    with nats_boundary():
        sub = await js.subscribe(subject, stream=stream, cb=hand_over, ordered_consumer=True,
                                 config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                                       opt_start_seq=start))
    at, read = start - 1, 0
    try:
        while True:
            while queue:
                msg = queue.popleft()
                queued -= len(msg.data)
                at, pending = position(msg)
                read += 1
                if read % YIELD_EVERY == 0:  # messages already here are read without a wait: let others run
                    await asyncio.sleep(0)
                yield msg
                if pending == 0 or at >= last:
                    return
            arrived.clear()
            room.set()
            try:
                await asyncio.wait_for(arrived.wait(), timeout)
            except asyncio.TimeoutError:
                if queue:
                    continue
                if await still_unread(js, sub, stream, subject, at, last):
                    raise ScanIncomplete(
                        f"the read of stream {stream} stopped before its end: {read} messages read, then "
                        f"{timeout:g} s without one while NATS still held more; nothing partial was used, retry",
                        details={"stream": stream, "read": read}) from None
                return
    finally:
        room.set()  # a callback waiting for room goes on (and finds the subscription gone)
        await unsubscribe_quietly(sub)
