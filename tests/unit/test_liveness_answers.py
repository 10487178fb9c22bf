"""``gamead up``'s liveness probe asks a silent child over HTTP (gamead_core.scaling.answers.ask), review27 F4/F5:
one HTTP client for the probe's life (building one loads a TLS context on up's event loop, ~19 ms each); the
whole request within the deadline (httpx's timeout bounds each read anew: a child trickling its answer was waited
for as long as it trickled); a worker whose ``/metrics`` host is an IPv6 literal is asked at a bracketed URL and
can answer (it raised ``InvalidURL`` and never counted as answering); ``ask`` never raises. Real sockets on
loopback, no mock of the child."""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gamead_core.embedded import PICKED_STARTS, free_port
from gamead_core.metrics_ports import WorkerMetricsPorts
from gamead_core.scaling.answers import ask, liveness_client

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _answer_200(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    await writer.drain()
    writer.close()


async def _trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 200 whose 30-byte body comes one byte every 0.1 s: each read well within httpx's per-read timeout."""
    await reader.readuntil(b"\r\n\r\n")
    try:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\nConnection: close\r\n\r\n")
        for _ in range(30):
            await writer.drain()
            await asyncio.sleep(0.1)  # the child's pace, not the test waiting
            writer.write(b"x")
        await writer.drain()
    except ConnectionError:
        pass  # the probe gave up on it
    finally:
        writer.close()


async def _serving(host: str, port: int, handler: Handler, then: Callable[[int], Awaitable[Any]]) -> Any:
    """``then(port)`` while ``handler`` serves on ``host:port`` (0: a port the kernel gives, bound here)."""
    server = await asyncio.start_server(handler, host, port)
    try:
        return await then(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def test_a_worker_serving_metrics_on_an_ipv6_host_is_asked_and_answers() -> None:
    def asked() -> Any:
        """The planned port's answer; ``OSError`` if another process took the pick before it was bound here."""
        metrics = WorkerMetricsPorts("::1", free_port("::1"))
        port = metrics.port_for("local-1")
        url = metrics.local_url("local-1")
        assert url == f"http://[::1]:{port}/metrics"
        assert metrics.urls() == f"local-1 http://[::1]:{port}/metrics"

        async def main() -> Any:
            async with liveness_client() as client:
                return await _serving("::1", port, _answer_200, lambda _: ask(client, url))

        return asyncio.run(main())

    for left in range(PICKED_STARTS - 1, -1, -1):  # a pick lost before the bind is picked again
        try:
            answer = asked()
            break
        except OSError as exc:
            if left == 0 or exc.errno != errno.EADDRINUSE:
                raise
    assert answer.live and answer.said == "/metrics answered 200", answer


@pytest.mark.parametrize("url", ["http://::1:9001/metrics", "http://[::1/metrics", "not a url at all"])
def test_a_url_httpx_cannot_read_is_no_answer_never_an_exception(url: str) -> None:
    async def main() -> Any:
        async with liveness_client() as client:
            return await ask(client, url)

    answer = asyncio.run(main())
    assert not answer.live and answer.said, answer


def test_a_child_trickling_its_answer_past_the_deadline_is_no_answer() -> None:
    async def main() -> Any:
        async with liveness_client(timeout=0.5) as client:
            return await _serving("127.0.0.1", 0, _trickle,
                                  lambda port: ask(client, f"http://127.0.0.1:{port}/healthz", timeout=0.5))

    answer = asyncio.run(main())
    assert not answer.live and answer.said == "/healthz: no answer in 0.5s", answer


def test_asking_again_builds_no_tls_context_on_the_probes_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe asks every silent child at every reading: only making the probe's client loads a TLS context."""
    built: list[object] = []
    real = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counted)
    async def main() -> list[Any]:
        async with liveness_client() as client:
            return await _serving("127.0.0.1", 0, _answer_200, lambda port: asyncio.gather(
                *(ask(client, f"http://127.0.0.1:{port}/healthz") for _ in range(5))))

    answers = asyncio.run(main())
    assert all(a.live for a in answers), answers
    assert len(built) <= 1, built  # the client's own, if any; never one per ask
