"""conn54: :meth:`gamead_core.api.conn_cap.Waiting.longest` passes over a connection whose client's bytes sit unread
in the kernel (a real socket pair's ``FIONREAD``), keeps its place, and passes over at most
``PASSED_OVER_AT_MOST`` of them for one newcomer."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from gamead_core.api.conn_cap import PASSED_OVER_AT_MOST, Waiting


class _Transport:
    """What longest() asks of a uvicorn transport, over the API's end of a real socket pair."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> socket.socket | None:
        return self.sock if name == "socket" else None

    def is_closing(self) -> bool:
        return False

    def is_reading(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0


class _Conn:
    def __init__(self, name: str, transport: _Transport) -> None:
        self.name, self.transport = name, transport
        self._reads = 0  #: as BoundedHttpToolsProtocol counts them


@pytest.fixture
def pairs() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def _conn(stack: ExitStack, name: str, spoke: bool) -> _Conn:
    api, client = socket.socketpair()
    stack.enter_context(api)
    stack.enter_context(client)
    if spoke:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    return _Conn(name, _Transport(api))


def test_the_silent_one_is_taken_and_the_speakers_keep_their_places(pairs: ExitStack) -> None:
    waiting = Waiting()
    conns = {name: _conn(pairs, name, spoke) for name, spoke in (("a", True), ("b", True), ("c", False), ("d", False))}
    for conn in conns.values():
        waiting.waits(conn)
    assert waiting.longest().name == "c"
    assert waiting.longest().name == "d"
    assert waiting.longest() is None  # the speakers are read next turn: a newcomer is refused, not let in for them
    conns["b"].transport.sock.recv(4096)  # b's request read (were it still waiting, its place is kept)
    assert waiting.longest().name == "b"
    assert waiting.longest() is None


def test_past_the_bound_on_passing_over_the_longest_waiting_is_taken(pairs: ExitStack) -> None:
    waiting = Waiting()
    for i in range(PASSED_OVER_AT_MOST + 1):
        waiting.waits(_conn(pairs, f"spoke{i}", True))
    waiting.waits(_conn(pairs, "silent", False))
    assert waiting.longest().name == f"spoke{PASSED_OVER_AT_MOST}"  # an accept costs at most that many ioctls
    assert waiting.longest().name == "silent"  # the sixteen kept their places: passed over again


def test_a_client_trickling_its_request_is_passed_over_once_not_at_every_newcomer(pairs: ExitStack) -> None:
    """final54: a client sending a byte of its head (or body) now and then has unread bytes at many a newcomer on a
    loaded API: passed over each time, it was never cut for room (the slow-loris bound of attack29, undone at load).
    It is passed over while the API has not read it since (a burst of newcomers in one loop turn), not after."""
    waiting = Waiting()
    client_api = socket.socketpair()
    api, client = (pairs.enter_context(s) for s in client_api)
    trickler = _Conn("trickler", _Transport(api))
    waiting.waits(trickler)
    client.sendall(b"GET /healthz HTTP/1.1\r\n")
    assert waiting.longest() is None  # passed over: its bytes are read next turn
    assert waiting.longest() is None  # a second newcomer of the same turn: the API has not read them yet
    api.recv(4096)  # the API's read, the head still unfinished: the connection waits on
    trickler._reads += 1
    client.sendall(b"H")  # its next byte, unread at the next newcomer
    assert waiting.longest() is trickler  # before: None, at every newcomer the byte came before
