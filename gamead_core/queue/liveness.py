"""Liveness of a NATS connection: a read loop that died is found and the connection reconnected, round trips
that cannot wedge the client, and the bound on bytes waiting to be sent (``nats.max_pending_bytes``).

nats-py 2.16 can wedge a client for good: a ``flush(timeout)`` that times out leaves its cancelled PONG future
queued; the late PONG's ``set_result`` raises ``InvalidStateError``, the read loop ends (``except Exception:
break``) while the client still says connected and never reconnects (nats-io/nats.py #624, #636, #853). So
gamead never uses ``flush`` as a probe (:func:`round_trip` is a JetStream API request, whose late answer is
dropped), and every connection made by :func:`gamead_core.queue.connection.connect` is guarded
(:func:`guard_reader`): a dead reader is found within a second and the connection reconnected.

The guard also asks the server a connection is on whether it still answers: one PING a second (never a
``flush``: the guard never cancels its PONG's future). A server that leaves it unanswered for ``nats.stale_after``
seconds (3 s; stopped by SIGSTOP, frozen, cut off) is left for another server of ``nats.url``: the socket is
dropped (its unsent bytes with it: their requests time out) and nats-py reconnects (nats-py's own PINGs, 10 s × 3,
kept an API and the workers on a stopped server of three for 30-37 s). :func:`unanswered_for` tells ``/readyz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core.errors import QueueUnavailable

log = logging.getLogger(__name__)

#: seconds between two looks at a connection's read loop (an attribute read: no traffic) and two PINGs of the guard
READER_CHECK_INTERVAL = 1.0
_PING = b"PING\r\n"


@dataclass
class _Pulse:
    """The guard's PING to the server a connection is on, awaiting its PONG."""

    transport: object = None  #: the transport it went on
    pongs: list[asyncio.Future[bool]] | None = None  #: nats-py's list of awaited PONGs it joined: a reconnect
    #: makes a new one (the transport object is reused), so another list means the PING went on an older socket
    pong: asyncio.Future[bool] | None = None  #: completed by nats-py's read loop when the PONG comes
    sent_at: float = 0.0  #: loop time it was sent
    misses: int = 0  #: guard rounds it has been unanswered (a blocked event loop counts one round, not its seconds)

    def current(self, nc: NATS) -> bool:
        """True if this pulse's PING went on ``nc``'s present connection (same transport, same PONG list)."""
        return self.transport is getattr(nc, "_transport", 0) and self.pongs is getattr(nc, "_pongs", 0)


_PULSES: weakref.WeakKeyDictionary[NATS, _Pulse] = weakref.WeakKeyDictionary()


def unanswered_for(nc: NATS | None) -> float:
    """Seconds the guard's PING to the server ``nc`` is on has waited for its PONG (0: answered, or none out),
    counted in guard rounds (:data:`READER_CHECK_INTERVAL` each): an event loop blocked for seconds counts one
    round, so a stalled API never reads its own stall as a silent server (review14b)."""
    pulse = _PULSES.get(nc) if nc is not None else None
    if pulse is None or pulse.pong is None or pulse.pong.done() or not pulse.current(nc):  # type: ignore[arg-type]
        return 0.0
    return pulse.misses * READER_CHECK_INTERVAL


def reader_alive(nc: NATS) -> bool:
    """True while the client's read loop runs (or the client is not connected, when nats-py restarts it on
    reconnect). False means: connected, yet nothing reads the socket; answers and PONGs are never seen."""
    if not nc.is_connected or nc.is_draining:
        return True
    task = getattr(nc, "_reading_task", None)
    return task is not None and not task.done()


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


def _abort_socket(nc: NATS) -> None:
    writer = getattr(getattr(nc, "_transport", None), "_io_writer", None)
    transport = getattr(writer, "transport", None)
    if transport is not None:
        with contextlib.suppress(Exception):
            transport.abort()  # unsent bytes are dropped: their requests time out and answer 503, never 202


async def recover_reader(nc: NATS) -> bool:
    """If ``nc`` is connected with a dead read loop, drop its socket and let nats-py reconnect
    (``Client.force_reconnect``: a new socket, read loop, flusher and subscriptions). True if it did."""
    if reader_alive(nc) or nc.is_closed or nc.is_reconnecting:
        return False
    log.warning("the NATS client's read loop has died while connected; reconnecting",
                extra={"client": nc.options.get("name")})
    _abort_socket(nc)  # so closing the transport cannot wait on a write buffer a stalled server never reads
    await nc.force_reconnect()
    return True


def _unstick_reconnect(nc: NATS) -> None:
    """While nats-py reconnects, the socket it left is closing; ``close`` waits for its unsent bytes, which a
    stopped server never reads (nats-py's own stale PINGs then hang in ``wait_closed``): dropped at once."""
    writer = getattr(getattr(nc, "_transport", None), "_io_writer", None)
    transport = getattr(writer, "transport", None)
    if nc.is_reconnecting and transport is not None and transport.is_closing():
        with contextlib.suppress(Exception):
            transport.abort()


async def check_answers(nc: NATS, stale_after: float) -> bool:
    """One round of the guard's PINGs: send one if none is out; if the one out has gone unanswered for
    ``stale_after`` seconds of rounds, drop the socket and let nats-py reconnect to another server of its list
    (``Client.force_reconnect``). True if it did. Needs the read loop alive (see :func:`recover_reader`)."""
    pulse = _PULSES.setdefault(nc, _Pulse())
    transport, pongs = getattr(nc, "_transport", None), getattr(nc, "_pongs", None)
    if not isinstance(pongs, list):  # nats-py changed its internals: no PINGs of ours (its own still run)
        return False
    if not nc.is_connected or nc.is_draining or not pulse.current(nc):
        pulse.transport, pulse.pongs, pulse.pong, pulse.misses = transport, pongs, None, 0
        if not nc.is_connected or nc.is_draining:
            return False
    if pulse.pong is not None and not pulse.pong.done():
        pulse.misses += 1
        # with one server known (nats.url and the cluster's gossip) there is nowhere else to go: dropping the
        # socket of a slow server would only lose its unsent bytes (nats-py's own stale PINGs still apply)
        if pulse.misses * READER_CHECK_INTERVAL < stale_after or len(nc.servers) < 2:
            return False
        log.warning("the NATS server this connection is on has not answered a PING for %.0f s; leaving it for "
                    "another server of nats.url", unanswered_for(nc), extra={"client": nc.options.get("name")})
        pulse.pong, pulse.misses = None, 0
        _abort_socket(nc)
        await nc.force_reconnect()
        return True
    loop = asyncio.get_running_loop()
    pulse.pong, pulse.sent_at, pulse.misses = loop.create_future(), loop.time(), 0
    # as nats-py's own PINGs (Client._send_ping), without awaiting its flush queue, which a stalled server fills:
    # the PONGs come in order and complete the futures of _pongs in order; this one is never cancelled (#624)
    pongs.append(pulse.pong)
    transport.write(_PING)  # type: ignore[union-attr]
    return False


async def _guard(nc: NATS, stale_after: float | None) -> None:
    while not nc.is_closed:
        try:
            _unstick_reconnect(nc)
            if not await recover_reader(nc) and stale_after:
                await check_answers(nc, stale_after)
        except Exception:  # noqa: BLE001 - a guard must outlive any one failed attempt
            log.exception("guarding the NATS connection failed; trying again")
        await asyncio.sleep(READER_CHECK_INTERVAL)


#: the guards running, so they are not garbage collected mid-flight (asyncio keeps weak references to tasks)
_GUARDS: set[asyncio.Task[None]] = set()


def guard_reader(nc: NATS, stale_after: float | None = None) -> None:
    """Watch ``nc`` until it is closed: a dead read loop (see :func:`reader_alive`) is recovered within
    :data:`READER_CHECK_INTERVAL` seconds (:func:`recover_reader`), and with ``stale_after`` (seconds:
    ``nats.stale_after``) a server that stopped answering PINGs is left for another (:func:`check_answers`).
    Called by :func:`connect` for every connection; call it for a client made with ``nats.connect`` directly."""
    task = asyncio.get_running_loop().create_task(_guard(nc, stale_after), name="gamead-nats-reader-guard")
    _GUARDS.add(task)
    task.add_done_callback(_GUARDS.discard)


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
