"""One batched direct get (NATS ADR-31, nats-server >= 2.11): a JSON request to ``$JS.API.DIRECT.GET.<stream>``
answered on an inbox by messages, then an end-of-batch status, read here as one unit with one error boundary.

The server answers a batch under the stream's isolation lock (nats-server ``getDirectRequest`` /
``getDirectMulti``: ``isolateMu``, which every write takes), so one batch is the stream at one instant: no write
lands between two of its messages. Each message carries ``Nats-Subject``, ``Nats-Sequence`` and
``Nats-Last-Sequence`` (the sequence of the batch's message before it, 0 for the first); the batch ends with
``204 EOB`` and ``Nats-Num-Pending`` (messages matching after the batch, at that instant), or with ``404`` (none).
A message missing in between (nats-py dropped it: its subscription over its pending limits) breaks the chain of
``Nats-Last-Sequence`` and the batch is refused, never taken for the whole.

``multi_last`` asks for the last message of each of up to :data:`MULTI_LAST_MAX` subjects (the server's cap: more
is ``413``), all read at one instant.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import DEFAULT_PREFIX

from gamead_core import names
from gamead_core.errors import QueueUnavailable
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.read_end import unsubscribe_quietly

#: subjects one ``multi_last`` request may match (nats-server ``getDirectMulti`` ``maxAllowedResponses``; ADR-31)
MULTI_LAST_MAX = 1024


class DirectGetsOff(QueueUnavailable):
    """The stream answers no direct gets (``allow_direct`` off: NATS answered ``503`` no responders). The caller
    reads another way."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One message of a batch: its stream ``subject`` and ``seq``, its ``headers`` (its own and the server's
    ``Nats-*`` ones) and ``data``."""

    subject: str
    seq: int
    headers: dict[str, str]
    data: bytes


@dataclass(slots=True)
class BatchEnd:
    """How a batch ended: ``pending`` messages matching after it at its instant (0: it reached the stream's end),
    ``last_seq`` its last message's sequence (0: it had none)."""

    pending: int = 0
    last_seq: int = 0


async def direct_batch(nc: NATS, stream: str, request: dict[str, Any], end: BatchEnd, *,
                       timeout: float) -> AsyncIterator[Entry]:
    """Yield the messages answering ``request`` (the ADR-31 JSON: ``seq``/``start_time`` + ``next_by_subj`` +
    ``batch`` [+ ``max_bytes``], or ``multi_last``) in stream order, then fill ``end``. A ``404`` is an empty
    batch (``end.pending`` 0). Raises :class:`DirectGetsOff` for a stream without direct gets,
    :class:`QueueUnavailable` for any other status, a broken chain of messages, or ``timeout`` seconds without
    one (the batch's message names the stream, never a server); NATS errors leave through :func:`nats_boundary`."""
    inbox = nc.new_inbox()
    queue: deque[Msg] = deque()  # one batch at most: the server sends it whole, unasked (no flow control)
    arrived = asyncio.Event()

    async def hand_over(msg: Msg) -> None:  # a callback, not next_msg: that made a task per message (list37)
        queue.append(msg)
        arrived.set()

    with nats_boundary():
        sub = await nc.subscribe(inbox, cb=hand_over)
        await nc.publish(f"{DEFAULT_PREFIX}.DIRECT.GET.{stream}", orjson.dumps(request), reply=inbox)
    before, read = 0, 0
    try:
        while True:
            while queue:
                msg = queue.popleft()
                headers = msg.headers or {}
                status = headers.get(names.HDR_STATUS)
                if status == "404":
                    end.pending, end.last_seq = 0, before
                    return
                if status == "503":
                    raise DirectGetsOff(f"stream {stream} answers no direct gets (allow_direct off)")
                if status is not None and status != "204":
                    raise QueueUnavailable(f"a batched read of stream {stream} was refused: {status} "
                                           f"{headers.get('Description', '')}".rstrip())
                chained = int(headers.get("Nats-Last-Sequence") or 0)
                if chained != before:  # a message between was lost on its way (nats-py's pending limits)
                    raise QueueUnavailable(f"a batched read of stream {stream} lost messages after sequence {before}")
                if status == "204":
                    end.pending, end.last_seq = int(headers.get("Nats-Num-Pending") or 0), before
                    return
                before = int(headers.get("Nats-Sequence") or 0)
                read += 1
                yield Entry(headers.get("Nats-Subject", ""), before, headers, msg.data)
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), timeout)
            except asyncio.TimeoutError:
                if not queue:
                    raise QueueUnavailable(f"a batched read of stream {stream} stopped: {read} messages, then "
                                           f"{timeout:g} s without one") from None
    finally:
        await unsubscribe_quietly(sub)
