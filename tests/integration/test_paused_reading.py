"""The read deadline (``api.read_timeout``) on a real ``gamead serve`` over raw sockets, with a request pipelined
behind a slow one (its ``GET /ads/<id>`` waits on a frozen nats-server of the module's own): only time the server
reads counts (review28 P1: a ``POST /ads`` whose body came in the next packet got 408 because the server itself had
paused reading, and the ad was never submitted), and a refusal held behind the slow answer waits a bounded time
(review28 P2: ``HOLD_READ_TIMEOUTS`` × ``api.read_timeout``, then the connection is closed)."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator

import httpx
import pytest

from gamead_core.api.refusal_order import HOLD_READ_TIMEOUTS
from gamead_core.embedded import EmbeddedNats
from tests.integration.test_http_limits import Response, _read_to_eof, _responses, address
from tests.support import Proc, ad, frozen, start_api, wait_for

READ_TIMEOUT = 1.0  #: api.read_timeout of the API under test (seconds)
#: a GET of an ad id nobody submitted: it waits on NATS (the store), so it runs as long as NATS is frozen
SLOW = b"GET /ads/01m8xw5egkjfh022sjtyjtx60e HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def nats_and_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedNats, str, Proc]]:
    """A nats-server of this module's own (the tests freeze it) and an API on it whose NATS calls outwait a freeze
    (its URL and process)."""
    server = EmbeddedNats(tmp_path_factory.mktemp("paused-nats")).start()
    proc: Proc | None = None
    try:
        proc, url = start_api(server.url, tmp_path_factory.mktemp("paused-api"),
                              GAMEAD_API__READ_TIMEOUT=str(READ_TIMEOUT), GAMEAD_NATS__REQUEST_TIMEOUT="60",
                              GAMEAD_NATS__STALE_AFTER="60", GAMEAD_NATS__PING_INTERVAL="60")
        yield server, url, proc
    finally:
        if proc is not None:
            proc.stop()
        server.stop()


def _nats_pid(server: EmbeddedNats) -> int:
    assert server.proc is not None
    return server.proc.pid


def _post(body: bytes) -> bytes:
    return (b"POST /ads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))


def _client_pauses() -> None:
    """The client waits twice ``api.read_timeout`` before sending the rest (the client's pause is the scenario:
    a deadline counted from the request's first byte has passed by then)."""
    threading.Event().wait(2 * READ_TIMEOUT)


@pytest.mark.parametrize("between", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"], ids=["next", "after another"])
def test_a_post_pipelined_behind_a_slow_get_is_accepted_though_its_body_comes_later(
    nats_and_api: tuple[EmbeddedNats, str, Proc], between: bytes,
) -> None:
    """The ``POST /ads`` head goes with the slow ``GET`` (and maybe another request between them), its body more
    than ``api.read_timeout`` later while the ``GET`` still runs: the server was not reading it meanwhile (the
    request waits its turn), so it is not 408 but 202, and the ad is there."""
    server, url, _ = nats_and_api
    title = f"Pipelined behind a slow GET ({len(between)})"
    body = json.dumps(ad(title)).encode()
    with socket.create_connection(address(url), timeout=30) as sock:
        with frozen(_nats_pid(server)):
            sock.sendall(SLOW + between + _post(body))
            _client_pauses()
            sock.sendall(body)
        answers = _responses(_read_to_eof(sock))
    assert [a.status for a in answers] == [404] + [200] * bool(between) + [202], [a.raw[:300] for a in answers]
    got = httpx.get(f"{url}/ads/{json.loads(answers[-1].body)['id']}", timeout=10)
    assert got.status_code == 200 and got.json()["ad"]["title"] == title, got.text


def test_a_pipelined_body_that_never_comes_is_still_408_once_its_turn_has_come(
    nats_and_api: tuple[EmbeddedNats, str, Proc],
) -> None:
    """The deadline stops while the server does not read, not for good: once the slow ``GET`` is answered the
    server reads again, and a body that still does not come gets 408 ``request_timeout``."""
    server, url, _ = nats_and_api
    body = json.dumps(ad("Never sent")).encode()
    with socket.create_connection(address(url), timeout=30) as sock:
        with frozen(_nats_pid(server)):
            sock.sendall(SLOW + _post(body))
            _client_pauses()
        answers = _responses(_read_to_eof(sock))
    assert [a.status for a in answers] == [404, 408], [a.raw[:300] for a in answers]
    assert answers[1].error()["code"] == "request_timeout"


def test_a_refusal_held_behind_a_slow_answer_closes_the_connection_after_its_bound(
    nats_and_api: tuple[EmbeddedNats, str, Proc],
) -> None:
    """A request refused in its head (431) behind a ``GET`` that does not end: the refusal waits for the ``GET``'s
    answer, but at most ``HOLD_READ_TIMEOUTS`` × ``api.read_timeout``; then the client reads the end of the
    connection (before, it stayed open, unread, as long as the ``GET`` ran)."""
    server, url, _ = nats_and_api
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    with socket.create_connection(address(url), timeout=HOLD_READ_TIMEOUTS * READ_TIMEOUT + 10) as sock:
        with frozen(_nats_pid(server)):  # the GET runs until the client has read the end of the connection
            sock.sendall(SLOW + big)
            got = _read_to_eof(sock)  # a socket timeout fails the test: the connection was never closed
    assert got == b"", Response(got).raw[:300]


def test_holds_cut_on_many_connections_at_once_are_one_log_line(nats_and_api: tuple[EmbeddedNats, str, Proc]) -> None:
    """fix32: a client holding refusals behind slow answers on 8 connections at once gets each connection closed at
    the hold's bound, and the API's log says so in one line (the next one, if any, counting the lines it stands
    for), not one ``closed a connection whose refusal … waited`` line per connection: a client makes them at will."""
    server, url, proc = nats_and_api
    said = f"waited {HOLD_READ_TIMEOUTS * READ_TIMEOUT:g}s for the answers before it"
    lines = lambda: proc.output().count(said)  # noqa: E731
    before = lines()
    # a 415 (no other test here holds one: the line of each code is said once every 5 s, whichever test made it)
    encoded = b"POST /ads HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}"
    socks = [socket.create_connection(address(url), timeout=HOLD_READ_TIMEOUTS * READ_TIMEOUT + 10) for _ in range(8)]
    try:
        with frozen(_nats_pid(server)):  # each GET runs until its connection was closed
            for sock in socks:
                sock.sendall(SLOW + encoded)
            got = [_read_to_eof(sock) for sock in socks]  # a socket timeout fails the test: never closed
    finally:
        for sock in socks:
            sock.close()
    assert got == [b""] * 8, [g[:100] for g in got]
    wait_for(lambda: lines() > before, timeout=10, what="the API to log the holds it cut")
    assert lines() - before <= 2, proc.output()[-3000:]  # before: 8


def _tcp_state(sock: socket.socket) -> int:
    """The client socket's TCP state (``struct tcp_info``'s first byte: 1 established, 7 closed by a reset, 8 the
    peer's FIN received): what the server did to the connection, seen without reading a byte."""
    return struct.unpack("B", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1))[0]


def test_a_held_refusal_behind_answers_the_client_never_reads_ends_the_connection_at_its_bound(
    nats_and_api: tuple[EmbeddedNats, str, Proc],
) -> None:
    """attack28c F2's drill: pipelined ``GET /ads?limit=500`` whose answers fill the socket buffers, then a 414,
    and the client reads nothing. The 414 is held behind an answer that cannot be written; at the hold's bound
    (``HOLD_READ_TIMEOUTS`` × ``api.read_timeout``) the server cuts the connection: the client's socket is no
    longer established, and what it can still read is not every answer. Before, the server "closed" it by
    flushing first: the connection stayed established for as long as the client did not read, the answers buffered
    in the API for ever, and a client reading at last got every byte."""
    _, url, _ = nats_and_api
    body = ad("Big answers", description="d" * 2000, targetAudience=["t" * 100] * 50)
    for _ in range(5):
        got = httpx.post(f"{url}/ads/batch", json={"ads": [body] * 100}, timeout=30)
        assert got.status_code in (200, 202, 207), got.text[:300]
    size = len(httpx.get(f"{url}/ads?limit=500", timeout=30).content)
    count = 1 + 24 * 1024 * 1024 // size  # more than loopback's socket buffers (a few MB) hold
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(address(url))
        sock.sendall(b"GET /ads?limit=500 HTTP/1.1\r\nHost: x\r\n\r\n" * count
                     + b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: _tcp_state(sock) != 1, timeout=HOLD_READ_TIMEOUTS * READ_TIMEOUT + 30,
                   what="the server to end the connection of a client that does not read")
        sock.settimeout(10)
        read = 0
        try:
            while chunk := sock.recv(1 << 20):
                read += len(chunk)
        except ConnectionResetError:
            pass
    assert read < count * size, (read, count, size)
