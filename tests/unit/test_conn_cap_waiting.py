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
