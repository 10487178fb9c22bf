"""The worker's bounded ``/metrics`` listener (gamead_core.telemetry.metrics_server), in process on loopback: what
a scraper or an abusive client gets back. The flood on a real worker is tests/integration/test_worker_metrics_flood.py."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter

from gamead_core.telemetry.metrics_server import MAX_CONNECTIONS, MAX_HEAD_BYTES, MAX_REQUESTS, MetricsServer


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("gamead_probe", "A probe.", registry=registry).inc(3)
    return registry


async def _exchange(port: int, data: bytes) -> bytes:
    """What the server sends back to ``data`` until it closes the connection (bounded by a deadline)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()


def test_answers_scrapes_by_prometheus_client_and_refuses_what_no_scrape_sends() -> None:
    async def run() -> None:
        server = MetricsServer(_registry())
        await server.start("127.0.0.1", 0)
        try:
            text = await _exchange(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert text.startswith(b"HTTP/1.1 200 ") and b"gamead_probe_total 3.0" in text
            assert b"Content-Type: text/plain; version=0.0.4" in text
            om = await _exchange(server.port, b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; "
                                 b"version=1.0.0\r\nConnection: close\r\n\r\n")
            assert b"application/openmetrics-text" in om and om.endswith(b"# EOF\n")
            big = await _exchange(server.port, b"GET /metrics HTTP/1.1\r\nX-a: " + b"a" * MAX_HEAD_BYTES + b"\r\n")
            assert big.startswith(b"HTTP/1.1 431 ")  # refused before the head ends, the connection closed
            body = await _exchange(server.port, b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
            assert body.startswith(b"HTTP/1.1 413 ")
            # keep-alive is bounded: the connection is closed after MAX_REQUESTS answers
            many = await _exchange(server.port, b"GET /metrics HTTP/1.1\r\n\r\n" * (MAX_REQUESTS + 5))
            assert many.count(b"HTTP/1.1 200 ") == MAX_REQUESTS and many.count(b"Connection: close") == 1
        finally:
            await server.close()

    asyncio.run(run())


def test_idle_connections_past_the_cap_make_room_for_a_scrape() -> None:
    async def run() -> None:
        server = MetricsServer(_registry())
        await server.start("127.0.0.1", 0)
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(MAX_CONNECTIONS + 10)]
        try:
            for _, writer in held:
                writer.write(b"GET /metrics HTTP/1.1\r\n")  # half a request, never finished
            text = await _exchange(server.port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            assert text.startswith(b"HTTP/1.1 200 ")
            assert len(server.connections) <= MAX_CONNECTIONS
            # the oldest were closed to make room (without an answer: EOF, or a reset for the bytes sent after)
            try:
                assert await asyncio.wait_for(held[0][0].read(), timeout=10) == b""
            except ConnectionResetError:
                pass
        finally:
            for _, writer in held:
                writer.close()
            await server.close()

    asyncio.run(run())
