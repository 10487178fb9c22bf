"""Reading a stream in order, once, from a start sequence or time up to its current end (ordered consumer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from gamead_core.queue.connection import nats_boundary, unsubscribe_quietly


async def read_stream(
    js: JetStreamContext, stream: str, subject: str, *, start_seq: int | None = None, tail: int | None = None,
    timeout: float = 5.0, start_time: datetime | None = None, headers_only: bool = False,
) -> AsyncIterator[Msg]:
    """Yield the messages of ``stream`` on ``subject`` from ``start_seq`` (or the last ``tail`` sequences, or the
    first stored at or after ``start_time``, an aware datetime) to the end as it was when the call started; with
    ``headers_only``, without their bodies. Stops early after ``timeout`` seconds without a message. A NATS error
    (its consumer not created in time, too) leaves as the gamead error (:func:`nats_boundary`)."""
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
    with nats_boundary():  # its consumer's creation timing out is QueueUnavailable too, not nats-py's own error
        sub = await js.subscribe(  # (attack34a F2: a job failed "TimeoutError: nats: timeout")
            subject,
            stream=stream,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
                                  headers_only=headers_only or None) if start_time is None else
            ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=start_time,
                           headers_only=headers_only or None),
        )
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=timeout)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                return
            yield msg
            meta = msg.metadata
            if meta.sequence.stream >= last or meta.num_pending == 0:
                return
    finally:
        await unsubscribe_quietly(sub)
