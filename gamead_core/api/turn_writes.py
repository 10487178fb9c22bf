"""One socket write per connection per event-loop turn for ``gamead serve`` (issue 14.4, single submit).

uvicorn's httptools protocol writes a response's status line and headers as soon as the application sends
``http.response.start``, and its body as a second write when ``http.response.body`` follows, in the same turn
of the loop: two ``write(2)`` calls, and with ``TCP_NODELAY`` (uvloop's default) two TCP segments, for every
JSON answer. On loopback the kernel runs the receiver's TCP path inside the sender's ``write``, so each costs
the API several µs and wakes the client twice. :class:`OneWritePerTurn` stands between the protocol and its
transport: the writes of one turn are kept and sent together (one ``writelines``: one ``writev(2)`` on uvloop)
by a callback the loop runs after the current one (``call_soon``; on uvloop in its next idle phase, so a poll
for I/O and due timers may come first). Whatever closes the stream through this object sends what is kept
first; a close the transport makes itself (uvloop and asyncio close it when the client's EOF arrives and the
protocol's ``eof_received`` returns a false value) does not pass here, so the protocol sends what is kept from
its ``eof_received`` (:class:`OneWritePerTurnProtocol`, which ``gamead serve``'s protocol is built on).

A turn's writes are sent at once when they reach :data:`SEND_AT` bytes: a streaming response that writes many
chunks without yielding then meets the transport's flow control (``pause_writing``) as before, instead of
growing a list for its whole length. Every other transport call goes to the transport; those that end or
half-close the stream (``close``, ``write_eof``) first send what is kept, ``abort`` drops it (as the transport
drops its own buffer), and ``get_write_buffer_size`` counts it, so uvicorn's flow control sees what is not
yet written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

#: bytes kept in one turn at which they are written at once (a response's head and JSON body are far below)
SEND_AT = 64 * 1024


class OneWritePerTurn:
    """``transport`` (a connected :class:`asyncio.Transport`) whose :meth:`write` calls of one loop turn go out
    as one write, sent by a ``loop.call_soon`` callback (module doc). Not thread-safe, as the transport."""

    __slots__ = ("_transport", "_loop", "_kept", "_size", "_eof", "before_close", "sent")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._kept: list[bytes] = []  #: this turn's writes, in order
        self._size = 0  #: their bytes
        self._eof = False  #: write_eof was called: nothing more can be sent
        #: bytes handed to the transport so far (the write timeout's progress: :mod:`gamead_core.api.write_watch`)
        self.sent = 0
        #: asked at :meth:`close`: True when the protocol takes the close over (a lingering close, which closes later)
        self.before_close: Callable[[], bool] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Keep ``data`` (bytes-like) for this turn's write; the first of a turn schedules it. Written at once
        when this turn's writes reach :data:`SEND_AT` bytes."""
        if not data or self._eof:  # after our EOF (a refusal closed the write side) the peer reads no more
            return
        if not self._kept:
            self._loop.call_soon(self.send_kept)
        part = bytes(data)
        self._kept.append(part)
        self._size += len(part)
        if self._size >= SEND_AT:
            self.send_kept()  # the scheduled call then finds nothing kept

    def send_kept(self) -> None:
        """Write what this turn kept, as one write (nothing if the transport is closing: the peer is gone)."""
        kept, self._kept, self._size = self._kept, [], 0
        if kept and not self._eof and not self._transport.is_closing():
            self._transport.writelines(kept)  # one call, not joined: a large body is not copied again
            self.sent += sum(map(len, kept))

    def close(self) -> None:
        if self.before_close is not None and self.before_close():
            return
        self.send_kept()
        self._transport.close()

    def write_eof(self) -> None:
        self.send_kept()
        self._eof = True
        self._transport.write_eof()

    def abort(self) -> None:
        self._kept, self._size = [], 0
        self._transport.abort()

    def kept_size(self) -> int:
        """Bytes of this turn's writes not yet handed to the transport."""
        return self._size

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def is_closing(self) -> bool:  # asked by uvicorn after every response: not through __getattr__
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # get_extra_info, pause_reading … : the transport's
        return getattr(self._transport, name)


class OneWritePerTurnProtocol:
    """Base for a protocol class beside uvicorn's ``HttpToolsProtocol`` (it needs ``self.loop``): its transport
    is wrapped in :class:`OneWritePerTurn`, and what a turn kept is sent when the client's EOF arrives, since the
    transport then closes itself once ``eof_received`` returns (past the wrapper: a client that half-closes
    after its request, as ``nc -N`` does, would otherwise lose its answer)."""

    loop: asyncio.AbstractEventLoop
    transport: Any

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(OneWritePerTurn(transport, self.loop))  # type: ignore[misc]

    def eof_received(self) -> bool | None:
        self.transport.send_kept()
        return super().eof_received()  # type: ignore[misc,no-any-return]
