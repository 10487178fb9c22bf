"""The answers :class:`~gamead_core.api.http_limits.BoundedHttpToolsProtocol` gives itself (414, 415, 431, 408, a
chunk's 413, a framing 400), in request order, then a lingering close.

A client may pipeline requests: send the next before the answer to the one before. A refusal decided in a
request's head, in its chunked body's framing or by the read deadline can then come while requests before it on
the connection are still being served. It is held, and written once the last of them is answered (uvicorn calls
``on_response_complete`` as each answer is complete; it starts the next pipelined request from there), so the
client reads every earlier answer first, in order. Before, the refusal was written and the connection closed at
once: a ``POST /ads`` sent in the same write as a refused request was queued, and its 202 with the ad's id never
reached the client. While a refusal is held nothing more is read or parsed: reading is paused and stays so
(:class:`HeldFlow`: uvicorn resumes it whenever an application waits in ``receive`` and as each answer is
complete), so the connection holds no more than before the refusal; the refused request's own application, if
its head was complete, gets ``http.disconnect``. A refusal with nothing before it in flight is written at once.
A hold is bounded: once it has waited :data:`HOLD_READ_TIMEOUTS` times ``api.read_timeout`` (60 s by default) for
the answers before it, the connection is cut (aborted: with reading paused the server cannot even see the client leave;
an earlier answer still being written is cut off, as it would be by the client's own timeout). Each refusal's and
each cut hold's log line is throttled per code (one every 5 s, the next saying how many it stood for): a client
makes them come at will, one per request (fix32: the hold's line was one per request).

While the server itself keeps from reading (uvicorn's flow control pauses reading while a pipelined request waits
for the one before it, or while a body waits for its application; a held refusal), the read deadline stops, and
goes on with the time that was left once reading resumes (:class:`HeldFlow` tells the protocol): only time the
server reads counts against ``api.read_timeout``. It counted from the request's first byte: a ``POST /ads``
pipelined behind a slow ``GET``, its body sent in the next packet, got 408 because the server had not read it.

Every refusal is the API's JSON error shape with ``Connection: close``; then the write side is shut down and
whatever the client still sends is read and dropped for up to :data:`LINGER_SECONDS` before the socket is
closed (a "lingering close", as nginx does), so the client gets the answer instead of a reset. The close still
sends what is buffered (the refusal itself, an answer before it), for at most :data:`HOLD_READ_TIMEOUTS` ×
``api.read_timeout`` more; a client that reads none of it by then gets the connection cut (attack28c F2: a close
that waited to flush kept a non-reading client's socket and its unsent answers for ever).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from gamead_core.api.write_watch import kernel_unsent
from gamead_core.log_throttle import Throttle, say
from gamead_core.telemetry.conn_metrics import refused_unread

log = logging.getLogger(__name__)
#: the refusal lines said (refused, and held too long), one per code every 5 s each (gamead_core.log_throttle): a
#: client makes them come at will, one per request
_said = Throttle(every=5.0)

#: seconds a refused connection is still read (and the bytes dropped) before it is closed
LINGER_SECONDS = 2.0
#: a held refusal waits at most this many ``api.read_timeout`` for the answers before it; then the connection is closed
HOLD_READ_TIMEOUTS = 4
#: key of the ASGI scope where a refusal of a request the application serves (or will serve: pipelined) is put
#: (a 408 in the middle of its body, a chunk's 413): the app sees only ``http.disconnect`` and answers into the
#: void, so whatever reports the request afterwards (the audit trail, :mod:`gamead_core.api.audit_gate`) reads
#: what the client really got from here (a :class:`Refusal`)
REFUSAL_SCOPE_KEY = "gamead.refusal"


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer the protocol gives itself, before (or instead of) the application."""

    status: int
    code: str
    message: str

    def encode(self, default_headers: list[tuple[bytes, bytes]]) -> bytes:
        body = orjson.dumps({"error": {"code": self.code, "message": self.message, "details": None}})
        parts = [STATUS_LINE[self.status]]
        for name, value in default_headers:
            parts += [name, b": ", value, b"\r\n"]
        parts += [b"content-type: application/json\r\ncontent-length: ", str(len(body)).encode(),
                  b"\r\nconnection: close\r\n\r\n", body]
        return b"".join(parts)


class HeldFlow(FlowControl):
    """uvicorn's flow control of one connection, whose reading stays paused while ``held`` (a refusal waits for
    earlier answers: nothing more is read) or ``may_read()`` is False (the pipelining bound); ``reading(on)`` is
    called each time reading is paused (``False``) or resumed (``True``), so the read deadline stops while the
    server keeps from reading."""

    held = False

    def __init__(self, transport: asyncio.Transport, reading: Callable[[bool], None]) -> None:
        super().__init__(transport)
        self._reading = reading
        #: asked before reading resumes: False keeps it paused (the pipelining bound, :mod:`~.pipeline_depth`)
        self.may_read: Callable[[], bool] = lambda: True

    def pause_reading(self) -> None:
        if not self.read_paused:
            super().pause_reading()
            self._reading(False)

    def resume_reading(self) -> None:
        if self.read_paused and not self.held and self.may_read():
            super().resume_reading()
            self._reading(True)


def answered_before_its_body(response_complete: bool, keep_alive: bool, in_message: bool) -> bool:
    """Whether a close of the connection is the one a request's own answer makes with its body still coming: the
    answer is complete, the connection is not kept alive (``Connection: close``) and the request's last byte has not
    come (``in_message``). Then the close lingers (attack29b F4). Not a later close of a kept-alive connection
    that once answered early (shutdown, the keep-alive timeout, room for a new connection: review29 F3, where
    uvicorn's ``more_body``, never cleared after an early answer, made each of them wait 2 s). Pure."""
    return response_complete and not keep_alive and in_message


class InOrderRefusals(HttpToolsProtocol):
    """uvicorn's httptools protocol whose own refusals (:meth:`_refuse`) come after the answers owed to the
    requests before them on the connection, then close with a linger (module docstring)."""

    _deadline: float | None  #: the read deadline (the subclass's); while a refusal is held, the hold's bound
    _read_left: float | None  #: seconds left of the read deadline while reading is paused (the subclass's)
    _in_message: bool  #: between a request's first byte and its last (the subclass's; uvicorn's more_body is not)
    limits: ClassVar[Any]  #: the subclass's HttpLimits (its ``read_timeout`` bounds a hold)
    flow: HeldFlow

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: decided, waiting for the answers of earlier requests; then, and while lingering, nothing more is parsed
        self._held: Refusal | None = None
        self._running: RequestResponseCycle | None = None  #: the last request started (uvicorn runs one at a time)
        self._linger_timer: asyncio.TimerHandle | None = None
        self._lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = HeldFlow(self.transport, self._reading_changed)  # the cycles get it from here, as they are made
        if hasattr(self.transport, "before_close"):  # gamead_core.api.turn_writes.OneWritePerTurn
            self.transport.before_close = self._linger_if_unread

    def _linger_if_unread(self) -> bool:
        """The application answered a request whose body is still coming and the connection is to close (the
        client sent ``Connection: close``; e.g. a 413 for a declared body over the cap): close with a linger, as a
        refusal does, and answer True (the close is taken over). A plain close with the body unread made the
        kernel reset the connection, so a client still writing its body (urllib, which sends ``Connection:
        close``) never read the answer (attack29b F4). False when nothing is unread, or already lingering."""
        cycle = self.cycle
        if self._lingering or cycle is None or self.transport.is_closing() or not answered_before_its_body(
                cycle.response_complete, cycle.keep_alive, self._in_message):
            return False
        self._deadline = self._read_left = None
        self._linger()
        return True

    def _reading_changed(self, reading: bool) -> None:
        """Reading was paused (``False``) or resumed (``True``) by the server (the subclass stops its deadline)."""

    def connection_lost(self, exc: Exception | None) -> None:
        self._held = None
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # starts the next pipelined request, if any
        if self._held is not None and not self.transport.is_closing() and not self._owed():
            self._answer(self._held)

    def _owed(self) -> bool:
        """Whether a request before the refused one is still unanswered: the running one, unless it is the refused
        request itself (its application was told ``http.disconnect``); those queued behind it come after it."""
        running = self._running
        return running is not None and not running.response_complete and not running.disconnected

    def _refuse(self, refusal: Refusal) -> None:
        """Answer ``refusal`` to the request being read, once every request before it is answered (held until
        then), then close with a linger; nothing if the connection is closing or already refused. The request's
        own application (if its head was complete) gets ``http.disconnect`` and ``refusal`` in its scope; if it
        answered before its body was all read, the connection is just closed (a second answer would be a lie)."""
        if self.transport.is_closing() or self._lingering or self._held is not None:
            return
        self._deadline = self._read_left = None
        # one line per code every few seconds: 185 slow clients' 408s were 185 lines in a second (attack29c F12)
        say(_said, refusal.code, self.loop.time(), log, logging.INFO, "refused a request: %d %s", refusal.status,
            refusal.code, extra={"client": self.client[0] if self.client else None, "status": refusal.status,
                                 "code": refusal.code})
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:  # the refused request's own (running or queued)
            if cycle.response_started or cycle.response_complete:
                self._close_within_bound()
                return
            cycle.scope[REFUSAL_SCOPE_KEY] = refusal  # type: ignore[literal-required]  # what the client got
            cycle.disconnected = True  # the handler waiting for this body gets http.disconnect
            cycle.message_event.set()
        else:  # refused before any application saw it (not HTTP, headers too large): the middleware never counts it
            refused_unread(refusal.status)
        if self._owed():
            self._held = refusal
            self.flow.pause_reading()
            self.flow.held = True
            self._deadline = self.loop.time() + HOLD_READ_TIMEOUTS * self.limits.read_timeout
        else:
            self._answer(refusal)

    def _give_up_hold(self, held: Refusal) -> None:
        """The answers before the ``held`` refusal took longer than the hold's bound (:data:`HOLD_READ_TIMEOUTS`):
        the connection is cut (aborted: a reset) without the refusal, and an answer still being written is cut off.
        ``close()`` would first flush what is buffered, so a client that never read kept the socket and megabytes of
        unsent answers for ever while this line said "closed" (attack28c F2)."""
        say(_said, f"held {held.code}", self.loop.time(), log, logging.INFO,  # one line per code every few seconds,
            "closed a connection whose refusal (%d %s) waited %gs for the answers before it", held.status,  # as above
            held.code, HOLD_READ_TIMEOUTS * self.limits.read_timeout,
            extra={"client": self.client[0] if self.client else None, "status": held.status, "code": held.code})
        self._held = None
        self._cut()

    def _cut(self) -> None:
        """Abort the connection; with bytes still unsent (in the transport or the kernel's send queue), with a reset
        (``SO_LINGER`` 0), which drops them at once: a plain abort freed the transport's buffer but let the kernel
        send its FIN after megabytes the client never read, so the socket lived on, unseen. With nothing unsent
        the client reads the end of the connection (FIN), as before."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                if self.transport.get_write_buffer_size() or kernel_unsent(sock.fileno()):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except (OSError, AttributeError):  # already gone, or no TIOCOUTQ (not Linux): abort all the same
                pass
        self.transport.abort()

    def _close_within_bound(self) -> None:
        """Close the connection once what is buffered is sent (the refusal, an answer before it), but cut it
        (abort) if that is not done within :data:`HOLD_READ_TIMEOUTS` × ``api.read_timeout``: a client that does
        not read would otherwise keep the socket and the unsent bytes for ever (attack28c F2)."""
        self.transport.close()
        if self.transport.get_write_buffer_size():
            self._linger_timer = self.loop.call_later(HOLD_READ_TIMEOUTS * self.limits.read_timeout, self._cut)

    def _answer(self, refusal: Refusal) -> None:
        self._held = None
        self._deadline = self._read_left = None
        self._unset_keepalive_if_required()  # armed when the last earlier answer completed
        self.transport.write(refusal.encode(self.server_state.default_headers))
        self._linger()

    def _linger(self) -> None:
        """A lingering close: what arrives is read and dropped (``data_received``), the write side is shut after the
        answer (the client reads it, then EOF), and the connection closes :data:`LINGER_SECONDS` later."""
        self._lingering = True
        self.flow.held = False
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger_timer = self.loop.call_later(LINGER_SECONDS, self._close_within_bound)
