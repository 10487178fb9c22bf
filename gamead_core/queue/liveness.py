"""Liveness of a NATS connection's writes and round trips: the bound on bytes waiting to be sent
(``nats.max_pending_bytes``) and round trips that cannot wedge the client.

nats-py 2.16 can wedge a client for good with a ``flush(timeout)`` that times out (see
:mod:`gamead_core.queue.reader_guard`, which guards every connection's read loop and server): so gamead never uses
``flush`` as a probe; :func:`round_trip` is a JetStream API request, whose late answer is dropped.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Coroutine
from contextvars import ContextVar
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core.errors import QueueUnavailable

_TLS = asyncio.sslproto._SSLProtocolTransport  # noqa: SLF001 - asyncio's TLS transport (3.11+)


def unsent_bytes(nc: NATS | None) -> int:
    """Bytes written by this process and not yet sent to NATS: nats-py's pending buffer plus the socket transport's
    write buffer (``get_write_buffer_size``; over TLS, the TCP transport's under it too). 0 for no client."""
    if nc is None:
        return 0
    size: int = nc._pending_data_size  # noqa: SLF001 - what nats-py's pending_data_size property returns
    try:  # (no getattr with defaults, no contextlib.suppress: this runs for every publish and API request)
        size += (transport := nc._transport._io_writer.transport).get_write_buffer_size()  # noqa: SLF001
        if type(transport) is _TLS:  # its encrypted bytes wait in the TCP transport under it (review17: 64 KiB)
            size += transport._ssl_protocol._transport.get_write_buffer_size()  # noqa: SLF001
    except Exception:  # noqa: BLE001 - no transport yet, or one being torn down: its buffer is not ours to count
        pass
    return max(size, 0)


#: per connection, the bytes that waited to be sent when :func:`guard_writes` last refused a write there; kept
#: until fewer wait (NATS has read some since)
_REFUSED_AT: weakref.WeakKeyDictionary[NATS, int] = weakref.WeakKeyDictionary()


def outbound_excess(nc: NATS | None, limit: int) -> int | None:
    """The bytes waiting to be sent (:func:`unsent_bytes`) while the connection is full, else None. Full: more than
    ``limit`` wait, or a write was refused (:func:`guard_writes`, which keeps what waits within ``limit``) and no
    fewer bytes wait now than then (NATS has read none of them since)."""
    waiting = unsent_bytes(nc)
    if waiting > limit:
        return waiting
    if _REFUSED_AT and nc is not None and (mark := _REFUSED_AT.get(nc)) is not None:
        if waiting >= mark:
            return waiting
        del _REFUSED_AT[nc]
    return None


def check_outbound(nc: NATS | None, limit: int) -> None:
    """Refuse a write at once while the connection is full (:func:`outbound_excess` with ``limit``,
    ``nats.max_pending_bytes``): NATS is connected but not reading (stalled, or a slow network), and buffering more
    would only grow memory. Raises :class:`QueueUnavailable` (503 ``queue_unavailable``)."""
    if (waiting := outbound_excess(nc, limit)) is not None:
        raise QueueUnavailable(f"NATS is not taking writes: {waiting:,} bytes wait to be sent "
                               f"(nats.max_pending_bytes = {limit:,})")


def connection_of(js: JetStreamContext) -> NATS:
    """The client a JetStream context sends through."""
    return js._nc  # noqa: SLF001 - nats-py keeps the connection of a JetStream context here (all 2.x)


class OutboundBacklog(nats.errors.Error):
    """A request refused before it was sent: the bytes already waiting to be sent plus its own would be more
    than ``limit`` (``nats.max_pending_bytes``; :func:`guard_writes`). :func:`gamead_core.queue.connection.translate`
    makes it a :class:`QueueUnavailable` with this text. Deliberately not nats-py's ``OutboundBufferLimitError``,
    which :func:`gamead_core.queue.publish.not_stored` reads as "this write certainly left no message": the refused
    request may be the read that follows an ambiguous write (a record create's conflict checked by a read), so
    the write it serves stays ambiguous (review16)."""

    def __init__(self, waiting: int, limit: int, size: int = 0) -> None:
        super().__init__()
        self.waiting, self.limit, self.size = waiting, limit, size  #: ``size``: the refused write's bytes

    def __str__(self) -> str:  # over the limit on its own, NATS may be fine (attack30b F1: it read "0 bytes wait")
        return ((f"a write of {self.size:,} bytes is larger than nats.max_pending_bytes ({self.limit:,}) on its own"
                 if self.size > self.limit else f"NATS is not taking writes: {self.waiting:,} bytes wait to be sent "
                 f"(nats.max_pending_bytes = {self.limit:,})") + "; not sent")


class PublishRefused(OutboundBacklog, nats.errors.OutboundBufferLimitError):
    """A publish refused before it was sent (:func:`guard_writes`): the message itself certainly left nothing, as
    nats-py's own ``OutboundBufferLimitError`` (so :func:`gamead_core.queue.publish.not_stored` answers True). The
    reads gamead makes on the submit path are requests (:class:`OutboundBacklog`), never a bare publish."""


_LIMITS: weakref.WeakKeyDictionary[NATS, int] = weakref.WeakKeyDictionary()
#: the connection whose request is being sent in this task: its own publish was admitted with the request
_ADMITTED: ContextVar[NATS | None] = ContextVar("gamead_admitted_request", default=None)


def outbound_limit(nc: NATS) -> int | None:
    """The ``nats.max_pending_bytes`` :func:`guard_writes` put on ``nc`` (None: none)."""
    return _LIMITS.get(nc)


def backed_up(nc: NATS | None) -> int | None:
    """The bytes waiting to be sent on ``nc`` while it is full (:func:`outbound_excess` with its
    :func:`outbound_limit`), else None (also for a connection without a limit)."""
    limit = outbound_limit(nc) if nc is not None else None
    return outbound_excess(nc, limit) if limit is not None else None


#: the protocol line around a message (``HPUB <subject> <reply> <header bytes> <total bytes>``, two line ends)
#: less its subject and reply; a reply inbox as long as a request's (``_INBOX.<22-char nuid>.<26-char token>``)
_FRAME, _INBOX = 48, "_INBOX." + 50 * "x"
#: the subjects of JetStream's flow-control replies (``$JS.FC.<stream>.<token>.<token>``)
_FLOW_CONTROL = "$JS.FC."


def wire_size(subject: str, payload: bytes, reply: str = "", headers: dict[str, str] | None = None) -> int:
    """Bytes one message puts on the way to NATS: its payload, subject and reply, its headers as the NATS protocol
    writes them (a ``NATS/1.0`` line, a ``key: value`` line each, an empty line) and the protocol line (at most
    :data:`_FRAME` more). An upper bound within a few bytes (ASCII names and values, as gamead writes)."""
    size = len(payload) + len(subject) + len(reply) + _FRAME
    if headers:  # (map over len: no Python frame per header; this runs for every publish)
        size += 12 + 4 * len(headers) + sum(map(len, headers)) + sum(map(len, headers.values()))
    return size


def admit(nc: NATS, size: int) -> None:
    """Refuse a write of ``size`` bytes on ``nc`` (:class:`PublishRefused`, nothing sent) when the bytes waiting to
    be sent plus ``size`` would be more than its :func:`outbound_limit`; no limit, no check. For a caller about to
    write several messages back to back (an atomic batch: refused whole rather than cut part-way)."""
    limit = _LIMITS.get(nc)
    if limit is not None and (waiting := unsent_bytes(nc)) + size > limit:
        raise _refused(nc, PublishRefused(waiting, limit, size))


def _refused(nc: NATS, exc: OutboundBacklog) -> OutboundBacklog:
    """``exc``, the refusal of a write of ``exc.size`` bytes, noted: ``nc`` is full (:func:`outbound_excess`) until
    fewer bytes wait than now. Not for a write over the limit on its own (nothing waiting could make it fit)."""
    if 0 < exc.waiting and exc.size <= exc.limit:
        _REFUSED_AT[nc] = exc.waiting
    return exc


def guard_writes(nc: NATS, limit: int) -> None:
    """Refuse every write on ``nc`` whose bytes would take what waits to be sent over ``limit``
    (``nats.max_pending_bytes``), at once and unsent: a publish with :class:`PublishRefused` (certainly not
    stored), a request with :class:`OutboundBacklog` (before nats-py makes its reply future, which a failed
    send would leave in its map for good). A stalled server reads none of them, and each request that timed
    out left its bytes in the buffer (a node's own periodic ones: heartbeat, storage probe, stats sample,
    topology check, leases, round trips).

    The check and the write are one step of the event loop (nats-py appends a publish to its pending buffer before
    its first await), so writes started together cannot each pass a check made before any of them was counted
    (CI of stop 26: 331,582 bytes against 262,144; batches started together went past a route's own check; a
    test of them all started at once: 540,465).
    The routes' own checks (:func:`check_outbound`, the batch's room) stay: they refuse earlier, with a message
    of their own. Wraps the client's ``request`` and ``publish`` (nats-py has no hook for either); the publish
    a request makes is admitted with the request."""
    _LIMITS[nc] = limit
    send, write = nc.request, nc.publish

    async def request(subject: str, payload: bytes = b"", *args: Any, **kwargs: Any) -> Any:
        size = wire_size(subject, payload, _INBOX, kwargs.get("headers"))
        if (waiting := unsent_bytes(nc)) + size > limit:
            raise _refused(nc, OutboundBacklog(waiting, limit, size))
        admitted = _ADMITTED.set(nc)
        try:
            return await send(subject, payload, *args, **kwargs)
        finally:
            _ADMITTED.reset(admitted)

    def publish(subject: str, payload: bytes = b"", reply: str = "", headers: dict[str, str] | None = None
                ) -> Coroutine[Any, Any, None]:
        # not a coroutine of its own (a frame more per message on the hot path): refuses when called, else
        # nats-py's publish, which appends the message to its buffer as soon as it is awaited
        if _ADMITTED.get() is not nc:
            size = wire_size(subject, payload, reply, headers)
            # a flow-control reply (~100 B, one per window the server waits on) goes regardless: nats-py sends it
            # from its read loop, which a refusal would end (review17)
            if (waiting := unsent_bytes(nc)) + size > limit and not subject.startswith(_FLOW_CONTROL):
                raise _refused(nc, PublishRefused(waiting, limit, size))
        return write(subject, payload, reply=reply, headers=headers)

    nc.request = request  # type: ignore[method-assign]
    nc.publish = publish  # type: ignore[method-assign]



async def round_trip(js: JetStreamContext) -> bool:
    """One JetStream API request (``$JS.API.INFO``, account info) with the context's timeout: True if the
    server answered anything (account info, or an API error such as "JetStream temporarily unavailable": the
    connection works both ways), False if it did not answer in time or the client is not connected. Unlike
    ``flush(timeout)``, a late answer is dropped harmlessly. Never raises (but ``CancelledError``)."""
    try:
        await js.account_info()
    except (nats.js.errors.APIError, nats.errors.NoRespondersError):
        return True
    except (nats.errors.Error, asyncio.TimeoutError, OSError):
        return False
    return True
