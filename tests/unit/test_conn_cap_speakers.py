"""conn55: :meth:`gamead_core.api.conn_cap.Waiting.longest` never takes for room a connection whose client's bytes sit
unread in the kernel (a real socket pair's ``FIONREAD``) while the API has not read it since: a loaded API makes
its newcomers' connections before it reads what came on older ones, and a connection taken then was a client that
had spoken and read nothing. A connection whose answer is stalled (its client reads nothing) is taken whatever it
sent after; one passed over and read since is judged on what was read (a trickling request is taken as before)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from gamead_core.api.conn_cap import PASSED_OVER_AT_MOST, Waiting, speaks
from gamead_core.api.write_watch import WriteWatch

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


class _Transport:
    """What longest() asks of a uvicorn transport, over the API's end of a real socket pair."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reading = True

    def get_extra_info(self, name: str) -> socket.socket | None:
        return self.sock if name == "socket" else None

    def is_closing(self) -> bool:
        return False

    def is_reading(self) -> bool:
        return self.reading

    def get_write_buffer_size(self) -> int:
        return 0


class _Conn:
    """A connection as :class:`Waiting` sees one: its transport, its reads so far, its answer's progress."""

    def __init__(self, name: str, api: socket.socket, client: socket.socket) -> None:
        self.name, self.transport, self.client = name, _Transport(api), client
        self._reads = 0  #: as BoundedHttpToolsProtocol counts them
        self._watch: WriteWatch | None = None

    def read(self) -> None:
        """The API reads what came (its loop's next turn)."""
        self.transport.sock.recv(65536)
        self._reads += 1


@pytest.fixture
def pairs() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def _conn(stack: ExitStack, name: str, sends: bytes = b"") -> _Conn:
    api, client = (stack.enter_context(s) for s in socket.socketpair())
    if sends:
        client.sendall(sends)
    return _Conn(name, api, client)


def _waiting(*conns: _Conn) -> Waiting:
    waiting = Waiting()
    for conn in conns:
        waiting.waits(conn)
    return waiting


def test_a_speaker_not_read_yet_is_passed_over_and_keeps_its_place(pairs: ExitStack) -> None:
    speaker, silent = _conn(pairs, "speaker", REQUEST), _conn(pairs, "silent")
    waiting = _waiting(speaker, silent)
    assert waiting.longest() is silent  # before: the speaker, waiting longest (its client read b'')
    assert waiting.longest() is None  # it is read next turn: a newcomer is refused 503 meanwhile, an answer too
    assert waiting.longest() is None  # another newcomer of the same turn: still unread, still passed over


def test_a_kept_alive_connection_whose_next_request_came_unread_is_a_speaker_too(pairs: ExitStack) -> None:
    kept = _conn(pairs, "kept alive", REQUEST)
    kept.read()  # its first request read (and answered): idle, waiting
    waiting = _waiting(kept)
    assert waiting.longest() is kept  # idle, nothing sent: taken
    waiting.waits(kept)
    kept.client.sendall(REQUEST)  # its next request, in the kernel when a newcomer comes
    assert waiting.longest() is None  # before: taken, its client reading b''


def test_a_trickling_request_is_passed_over_only_until_the_api_reads_it(pairs: ExitStack) -> None:
    """final54's objection: a client sending a byte of its head now and then has unread bytes at many a newcomer on
    a loaded API; passed over each time, it would never be taken (attack29's slow-loris bound undone)."""
    trickler = _conn(pairs, "trickler", b"GET /healthz HTTP/1.1\r\n")
    waiting = _waiting(trickler)
    assert waiting.longest() is None  # its bytes are read next turn
    trickler.read()  # the head still unfinished: it waits on (no new wait: its request began before)
    trickler.client.sendall(b"H")
    assert waiting.longest() is trickler  # read since it was passed over: judged on what came, still sending


def test_a_stalled_answer_is_taken_whatever_its_client_sent_after(pairs: ExitStack) -> None:
    """The readers that never read: answered, the answer stalled, more requests pipelined in the kernel."""
    reader = _conn(pairs, "reader", REQUEST)
    reader._watch = WriteWatch(0)
    reader._watch.stalled = 1.0
    assert _waiting(reader).longest() is reader


def test_a_connection_the_api_keeps_from_reading_is_not_a_speaker(pairs: ExitStack) -> None:
    paused = _conn(pairs, "paused", REQUEST)
    paused.transport.reading = False  # its bytes are not read next turn
    assert _waiting(paused).longest() is paused


def test_past_the_speakers_passed_over_for_one_newcomer_none_is_taken(pairs: ExitStack) -> None:
    """An accept costs at most PASSED_OVER_AT_MOST ioctls; past them the newcomer is refused (answered 503), never a
    speaker cut; the speakers keep their places."""
    speakers = [_conn(pairs, f"speaker {i}", REQUEST) for i in range(PASSED_OVER_AT_MOST + 1)]
    silent = _conn(pairs, "silent")
    waiting = _waiting(*speakers, silent)
    assert waiting.longest() is None
    for speaker in speakers:
        speaker.read()
        speaker.client.sendall(b"x")  # read since: bytes that come now do not make a speaker of it
    assert waiting.longest() is speakers[0]


@pytest.mark.parametrize(("unread", "stalled", "mark", "reads", "expected"), [
    (0, False, None, 0, False),  # nothing came
    (40, False, None, 0, True),  # came, never passed over
    (40, False, 3, 3, True),  # passed over, not read since
    (40, False, 3, 4, False),  # read since: judged on what was read
    (40, True, None, 0, False),  # its answer stalled
])
def test_speaks(unread: int, stalled: bool, mark: int | None, reads: int, expected: bool) -> None:
    assert speaks(unread, stalled, mark, reads) is expected
