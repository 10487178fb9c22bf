"""The pipelining bound of ``gamead serve``'s protocol driven in memory (:mod:`gamead_core.api.pipeline_depth`):
how many requests one read may queue, that reading stays paused while they wait, and that each is answered in
order once the answers make room. The memory figure is measured on a real ``gamead serve`` in
``tests/integration/test_pipelined_unread.py``."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT

from gamead_core.api.pipeline_depth import FEED_SLICE, MAX_QUEUED
from tests.unit.test_http_limits import connected

GET = b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n"


def test_one_read_of_many_pipelined_requests_queues_a_bounded_number_then_answers_them_all_in_order() -> None:
    """attack44 F5: one read (256 KiB: ~7,500 GETs) was parsed whole into uvicorn's queue, and reading resumed after
    every answer, so a client that never read its answers had ~260,000 requests queued (~1 KB each). Required: while
    the first request is being answered, at most :data:`MAX_QUEUED` plus one slice's requests are queued and reading
    stays paused, through uvicorn's resumes (a ``receive``); once the first is answered, all 3,000 are answered, in
    order, and reading resumes. Without the fix: 2,999 queued (fails); with it 139."""
    count = 3000
    gate = asyncio.Event()
    order: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/0":
            await receive()  # uvicorn resumes reading from here: the bound keeps it paused
            await gate.wait()
        order.append(scope["path"])
        body = scope["path"].encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def scenario() -> tuple[int, bool, bytes, bool]:
        proto, transport = connected(app)
        proto.data_received(b"".join(GET % i for i in range(count)))
        for _ in range(50):
            await asyncio.sleep(0)
        queued, paused = len(proto.pipeline), transport.paused
        gate.set()
        for _ in range(count * 3):
            await asyncio.sleep(0)
            if len(order) == count:
                break
        for _ in range(50):
            await asyncio.sleep(0)
        out, resumed = bytes(transport.out), not transport.paused
        proto.connection_lost(None)
        return queued, paused, out, resumed

    queued, paused, out, resumed = asyncio.run(scenario())
    print(f"queued {queued}")
    assert queued <= MAX_QUEUED + FEED_SLICE // len(GET % 0), queued
    assert paused
    assert re.findall(rb"\r\n\r\n(/\d+)", out) == [b"/%d" % i for i in range(count)]
    assert resumed


def test_a_queued_requests_body_is_read_no_further_than_uvicorns_high_water_mark_until_it_starts() -> None:
    """The same kind for a body: a ``POST`` queued behind a request being answered had its body read into memory
    read after read (uvicorn resumed reading after each answer and whenever an application waited in
    ``receive``), the route's cap applied only once it started. Required: while it waits, at most
    ``HIGH_WATER_LIMIT`` (64 KiB) plus a slice of its 1 MB body is buffered and reading stays paused; once started,
    it gets its whole body. Without the fix: 1,048,576 bytes buffered (fails); with it 69,541."""
    size = 1024 * 1024
    gate = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        got = 0
        if scope["path"] == "/first":
            await receive()  # its whole (empty) body
            await gate.wait()
        while scope["path"] == "/second":
            message = await receive()
            got += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = str(got).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def scenario() -> tuple[int, bool, bytes]:
        proto, transport = connected(app)
        proto.data_received(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
                            + b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size)
        for _ in range(50):
            await asyncio.sleep(0)
        buffered, paused = len(proto.cycle.body), transport.paused
        gate.set()
        for _ in range(500):
            await asyncio.sleep(0)
        out = bytes(transport.out)
        proto.connection_lost(None)
        return buffered, paused, out

    buffered, paused, out = asyncio.run(scenario())
    print(f"buffered {buffered}")
    assert buffered <= HIGH_WATER_LIMIT + FEED_SLICE, buffered
    assert paused
    assert out.endswith(b"\r\n\r\n%d" % size), out[-200:]
