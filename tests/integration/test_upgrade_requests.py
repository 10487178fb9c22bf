"""attack38b F3 on a real ``gamead serve`` and a worker's ``/metrics`` listener over real sockets: a request asking
to switch protocols (``Upgrade: websocket``, ``h2c``) is answered as the HTTP/1.1 request it also is, in the API's own
JSON (RFC 9110 §7.8 lets a server ignore ``Upgrade``), and the connection closes after that answer. Before, uvicorn
handed websocket upgrades to its WebSocket protocol: ``GET /healthz`` with ``Upgrade: websocket`` got a text/plain
``400 Failed to open a WebSocket connection: missing Sec-WebSocket-Key header.``, with a key an empty 403, and
``POST /ads`` a text/plain 400, none with a ``code``; each logged two warnings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from gamead_core.embedded import EmbeddedNats
from gamead_core.telemetry.metrics_listener import serve_metrics
from tests.integration.test_http_limits import Response, send_then_read
from tests.support import Proc, start_api

WEBSOCKET = b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
WEBSOCKET_KEYED = WEBSOCKET + b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
H2C = b"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"


@pytest.fixture(scope="module")
def api(nats_server: EmbeddedNats, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, str]]:
    proc, url = start_api(nats_server.url, tmp_path_factory.mktemp("upgrade-api"))
    yield proc, url
    proc.stop()


@pytest.mark.parametrize("upgrade", [WEBSOCKET, WEBSOCKET_KEYED, H2C], ids=["websocket", "websocket-keyed", "h2c"])
def test_an_upgrade_request_is_answered_as_http_in_the_apis_json_then_closed(api: tuple[Proc, str],
                                                                             upgrade: bytes) -> None:
    proc, url = api
    health = send_then_read(url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + upgrade + b"\r\n")
    print(health.raw[:300])
    assert health.status == 200 and health.headers["content-type"] == "application/json"
    assert health.headers.get("connection") == "close"  # nothing past the upgrade is read as HTTP
    body = json.dumps({"title": "Upgrade", "description": "d", "genre": "RPG", "targetAudience": ["18-24"],
                       "callToAction": "Play now"}).encode()
    post = send_then_read(url, b"POST /ads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          + upgrade + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    print(post.raw[:300])  # its body would be read as the next protocol's bytes: refused, saying why
    assert post.status == 400 and post.error()["code"] == "bad_request" and "Upgrade" in str(post.error()["message"])
    unknown = send_then_read(url, b"GET /no-such-route HTTP/1.1\r\nHost: x\r\n" + upgrade + b"\r\n")
    assert unknown.status == 404 and unknown.error()["code"] == "not_found"
    assert "Unsupported upgrade" not in proc.output() and "WebSocket" not in proc.output()


def test_a_workers_metrics_listener_answers_an_upgrade_as_a_scrape() -> None:
    async def run() -> bytes:
        registry = CollectorRegistry()
        Counter("gamead_probe", "A probe.", registry=registry).inc()
        listener = await serve_metrics(registry, "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + WEBSOCKET_KEYED + b"\r\n")
            try:
                return await asyncio.wait_for(reader.read(), timeout=10)
            finally:
                writer.close()
        finally:
            await listener.close()

    answer = Response(asyncio.run(run()))
    print(answer.raw[:300])
    assert answer.status == 200 and b"gamead_probe_total 1.0" in answer.body  # before: an empty 403
