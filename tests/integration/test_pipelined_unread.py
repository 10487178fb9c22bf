"""Pipelined requests on a real ``gamead serve`` over raw sockets (attack44 F5): a client that pipelines requests and
never reads its answers holds a bounded amount of the API's memory (:mod:`gamead_core.api.pipeline_depth`), another
client is still answered meanwhile, and a client that does read gets every pipelined answer, in order."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.integration.test_http_limits import MB, _responses, address, rss_bytes
from tests.support import Proc, start_api

#: the attack's input: 1,000 pipelined GETs per send (36 KB)
PIPELINED = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 1000
#: seconds each unread socket pipelines (the attack ran 25 s; ~80 MB a socket by 6 s before the fix)
SECONDS = 6.0
#: RSS the API may grow by under the attack, MB (before the fix: +270 MB a socket over 25 s)
GROWTH_MB = 40
#: another client's /healthz must be answered within this many seconds during the attack (p50 idle: 3 ms)
HEALTHZ_DEADLINE = 2.0


@pytest.fixture(scope="module")
def api(nats_server: EmbeddedNats, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, str]]:
    """An API process of this module's own, so its memory is ours to measure."""
    proc, url = start_api(nats_server.url, tmp_path_factory.mktemp("pipelined-api"))
    yield proc, url
    proc.stop()


def _pipeline_unread(url: str, sockets: int, until: float, sent: list[int]) -> None:
    """``sockets`` connections each sending :data:`PIPELINED` as fast as the server takes it until ``until``
    (monotonic), reading nothing; ``sent`` gets the bytes each got in."""
    conns = [socket.create_connection(address(url)) for _ in range(sockets)]
    sent.extend(0 for _ in conns)
    try:
        for conn in conns:
            conn.setblocking(False)
        while time.monotonic() < until:
            for i, conn in enumerate(conns):
                try:
                    sent[i] += conn.send(PIPELINED)
                except BlockingIOError:
                    pass
            threading.Event().wait(0.005)
    finally:
        for conn in conns:
            conn.close()


def test_pipelined_requests_never_read_hold_bounded_memory_and_others_are_answered(api: tuple[Proc, str]) -> None:
    """attack44 F5: 3 sockets pipelining ``GET /healthz`` without reading took the API from 924 MB to 1.73 GB, each
    read parsed whole into uvicorn's queue (~1 KB a request) and reading resumed after every answer. Required:
    RSS grows by less than :data:`GROWTH_MB` while 3 sockets pipeline for :data:`SECONDS` s, and another client's
    /healthz is answered within :data:`HEALTHZ_DEADLINE` s throughout. Without the fix (``BoundedPipeline`` out of
    the protocol): +175.6 MB and 3 of 4 /healthz past 2 s; with it +1.8 MB and 52 of 52 answered."""
    proc, url = api
    idle = rss_bytes(proc.pid)
    sent: list[int] = []
    attack = threading.Thread(target=_pipeline_unread, args=(url, 3, time.monotonic() + SECONDS, sent))
    attack.start()
    peak, answered, missed = idle, 0, 0
    try:
        with httpx.Client(timeout=HEALTHZ_DEADLINE) as other:
            while attack.is_alive():
                try:
                    answered += other.get(f"{url}/healthz", headers={"Connection": "close"}).status_code == 200
                except httpx.TimeoutException:
                    missed += 1
                peak = max(peak, rss_bytes(proc.pid))
                threading.Event().wait(0.1)
    finally:
        attack.join()
    grown = (peak - idle) / MB
    print(f"API RSS idle {idle / MB:.1f} MB, peak {peak / MB:.1f} MB (+{grown:.1f} MB); sent "
          f"{[round(n / MB, 1) for n in sent]} MB; /healthz {answered} answered, {missed} not within "
          f"{HEALTHZ_DEADLINE:g} s")
    assert min(sent) > 1 * MB, f"the attack got too little in to mean anything: {sent}"
    assert grown < GROWTH_MB, f"RSS grew by {grown:.1f} MB with 3 unread pipelining sockets (idle {idle / MB:.1f} MB)"
    assert answered and not missed, f"another client's /healthz: {missed} of {answered + missed} not answered in time"


def test_every_pipelined_request_is_answered_in_order_when_the_client_reads(api: tuple[Proc, str]) -> None:
    """Many more requests in one send than the pipelining bound lets the API queue (the rest kept unparsed, then
    parsed as answers make room): each is answered once, in order, and the connection still serves afterwards."""
    _, url = api
    count = 5000
    routes = [b"/nowhere" if i % 7 == 0 else b"/healthz" for i in range(count)]  # order shows in the statuses
    requests = b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % route for route in routes)
    last = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(address(url), timeout=30) as sock:
        writer = threading.Thread(target=sock.sendall, args=(requests + last,))
        writer.start()
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        writer.join()
    answers = _responses(b"".join(chunks))
    assert [a.status for a in answers] == [404 if route == b"/nowhere" else 200 for route in routes] + [200]
