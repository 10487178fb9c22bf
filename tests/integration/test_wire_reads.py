"""attack38b F4 and F5 on a real ``gamead serve`` over real sockets: how the API reads what a client sends.

F4: a read holding many whole pipelined requests and the start of the next was counted whole against that next
request's head bound (``api.max_header_bytes``, 16 KiB): 20,000 pipelined 36-byte ``GET /healthz`` got 3,763 answers,
then a 431 ``headers_too_large`` and a closed connection (2,000 of 108 bytes: 1,184, then 431).
F5: a client that half-closes after its request (``shutdown(SHUT_WR)``, as ``nc -N`` does) got 0 bytes back from
every route that awaits NATS, and a ``POST /ads`` was queued all the same, its id never told."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import pytest

from gamead_core.embedded import EmbeddedNats
from tests.integration.test_http_limits import Response, address, read_all
from tests.support import Proc, ad, start_api

PIPELINED = 2000  #: requests sent in one go on one connection


@pytest.fixture(scope="module")
def api(nats_server: EmbeddedNats, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, str]]:
    proc, url = start_api(nats_server.url, tmp_path_factory.mktemp("wire-api"))
    yield proc, url
    proc.stop()


def test_many_small_pipelined_requests_are_all_answered_none_refused_431(api: tuple[Proc, str]) -> None:
    """2,000 pipelined ``GET /healthz`` of 108 bytes each, sent in one write, the last with ``Connection: close``:
    2,000 answers 200 (before: 1,184, then a 431 for a 108-byte head)."""
    _, url = api
    one = b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: pipelining-test/1.0\r\nX-Pad: " + b"p" * 32 + b"\r\n\r\n"
    assert len(one) == 108
    last = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(address(url), timeout=60) as sock:
        sock.sendall(one * (PIPELINED - 1) + last)
        raw = read_all(sock)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)  # each answer's status line (a body ends without a CRLF)
    print(f"{len(statuses)} answers: {dict((s, statuses.count(s)) for s in set(statuses))}")
    assert statuses == [b"200"] * PIPELINED


def _half_closed(url: str, request: bytes) -> Response:
    """``request`` sent, then the client's side shut (SHUT_WR); what came back until the server closed."""
    with socket.create_connection(address(url), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        return Response(read_all(sock))


def test_a_client_that_half_closes_after_its_request_gets_its_answer(api: tuple[Proc, str]) -> None:
    """``POST /ads`` then SHUT_WR: the 202 with the ad's id (before: 0 bytes, the ad queued all the same);
    ``GET /v1/stats`` likewise 200 (before: 0 bytes)."""
    _, url = api
    body = json.dumps(ad("Half closed")).encode()
    posted = _half_closed(url, b"POST /ads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    print(posted.raw[:300])
    assert posted.status == 202 and json.loads(posted.body)["id"]
    stats = _half_closed(url, b"GET /v1/stats HTTP/1.1\r\nHost: x\r\n\r\n")
    assert stats.status == 200 and "queue" in json.loads(stats.body)
    cut = _half_closed(url, b"POST /ads HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")  # can never be whole
    assert cut.status in (0, 400, 408)  # closed at once or refused, never waited on
