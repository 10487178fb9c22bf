"""A response's head and body leave ``gamead serve`` in one write (gamead_core.api.turn_writes), over a real
loopback TCP connection on the real event loop; the transport underneath counts the writes it is given."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from gamead_core.api.turn_writes import SEND_AT, OneWritePerTurn


class _Counted:
    """The real transport, with the writes it was given recorded (what reaches the socket, call by call)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:  # one call: one writev(2) on uvloop
        self.writes.append(b"".join(parts))
        self.transport.writelines(parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _over_loopback(body: Callable[[OneWritePerTurn, _Counted, socket.socket], Awaitable[None]]) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        made: asyncio.Future[asyncio.Transport] = loop.create_future()

        class Server(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                made.set_result(transport)  # type: ignore[arg-type]

        server = await loop.create_server(Server, "127.0.0.1", 0)
        client = socket.create_connection(server.sockets[0].getsockname()[:2])
        client.settimeout(10)
        try:
            counted = _Counted(await asyncio.wait_for(made, 10))
            await body(OneWritePerTurn(counted, loop), counted, client)  # type: ignore[arg-type]
        finally:
            client.close()
            server.close()

    uvloop.run(run())


def _read_until(client: socket.socket, size: int) -> bytes:
    got = b""
    while len(got) < size:
        chunk = client.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_a_head_and_body_written_in_one_turn_go_out_as_one_write_in_order() -> None:
    async def body(out: OneWritePerTurn, counted: _Counted, client: socket.socket) -> None:
        head, payload = b"HTTP/1.1 202 Accepted\r\ncontent-length: 11\r\n\r\n", b'{"id":"a1"}'
        out.write(head)
        out.write(payload)
        assert counted.writes == [] and out.get_write_buffer_size() == len(head) + len(payload)
        await asyncio.sleep(0)  # the next turn
        assert counted.writes == [head + payload]
        assert await asyncio.to_thread(_read_until, client, len(head + payload)) == head + payload

    _over_loopback(body)


def test_writes_of_different_turns_are_not_held_for_each_other() -> None:
    async def body(out: OneWritePerTurn, counted: _Counted, client: socket.socket) -> None:
        out.write(b"first")
        await asyncio.sleep(0)
        out.write(b"second")
        await asyncio.sleep(0)
        assert counted.writes == [b"first", b"second"]

    _over_loopback(body)


def test_close_and_write_eof_send_what_was_kept_first_and_abort_drops_it() -> None:
    async def closing(out: OneWritePerTurn, counted: _Counted, client: socket.socket) -> None:
        out.write(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
        out.close()  # in the same turn, as uvicorn closes after a response without keep-alive
        got = await asyncio.to_thread(_read_until, client, 1 << 20)  # up to EOF
        assert got == b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n"

    async def half_closing(out: OneWritePerTurn, counted: _Counted, client: socket.socket) -> None:
        out.write(b"refused")
        out.write_eof()  # the lingering close of a refusal: the answer, then EOF
        assert await asyncio.to_thread(_read_until, client, 1 << 20) == b"refused"

    async def aborting(out: OneWritePerTurn, counted: _Counted, client: socket.socket) -> None:
        out.write(b"never sent")
        out.abort()
        await asyncio.sleep(0)
        assert counted.writes == [] and out.get_write_buffer_size() == 0
        assert out.is_closing()  # the transport's own answer

    _over_loopback(closing)
    _over_loopback(half_closing)
    _over_loopback(aborting)


def test_a_turn_that_writes_much_sends_at_the_bound_so_flow_control_still_sees_it() -> None:
    async def body(out: OneWritePerTurn, counted: _Counted, client: socket.socket) -> None:
        chunk = b"x" * 4096
        for _ in range(SEND_AT // len(chunk) * 3):  # a streaming response's chunks, never yielding
            out.write(chunk)
            assert out.get_write_buffer_size() - counted.transport.get_write_buffer_size() < SEND_AT
        assert [len(w) for w in counted.writes] == [SEND_AT] * 3  # each sent as the bound was reached

    _over_loopback(body)


def test_a_write_after_our_eof_is_dropped_never_a_traceback_in_the_event_loop() -> None:
    """attack27b F2 addendum: a pipelined request's answer finished after a refusal had already written EOF: the
    kept write was sent at the end of the turn and uvloop raised "Cannot call writelines() after write_eof()" in
    the loop's callback (an ERROR traceback in the API log per such request). The peer can read nothing after our
    EOF, so the write is dropped."""
    async def body(out: OneWritePerTurn, counted: _Counted, client: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        raised: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: raised.append(context))
        out.write(b"refused")
        out.write_eof()
        out.write(b"late answer")  # the earlier request's cycle completing after the refusal
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert raised == [], raised
        assert counted.writes == [b"refused"]
        assert await asyncio.to_thread(_read_until, client, 100) == b"refused"  # then EOF, nothing more

    _over_loopback(body)
