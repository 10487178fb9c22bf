"""A worker's ``/metrics`` listener (``worker.metrics_port``): a small HTTP/1.1 server on the worker's own event
loop, with bounded connections, time and bytes; the page is prometheus-client's.

Why not prometheus-client's ``start_http_server``: it starts one thread per connection, with no cap and no read
timeout, so 3,000 connections trickling their headers took a worker from 72 MB to 236 MB and 5,202 threads, and
silenced its heartbeat (the GIL) until ``gamead up`` killed it as wedged (attack25, finding 1). Here:

* at most :data:`MAX_CONNECTIONS` connections at once; one more closes the oldest connection that is not
  being answered (so a client that holds connections open cannot keep a scrape out), or, when every one is
  being answered, is itself answered ``503`` and closed at once; the kernel's listen backlog is
  :data:`BACKLOG`;
* a request (line and headers, whole) must arrive within :data:`READ_TIMEOUT` seconds of the connection's
  opening or of the previous answer (a deadline, not per byte): a connection idle that long (keep-alive
  included) is closed, one with half a request is answered ``408`` and closed; an answer the client does not
  take within that time is dropped with the connection;
* the request line and headers are at most :data:`MAX_HEAD_BYTES` bytes and :data:`MAX_HEADERS` fields
  (else ``431``); a request with a body is ``413``; at most :data:`MAX_REQUESTS` requests per connection;
* ``GET`` / ``HEAD`` on any path (as prometheus-client's server; ``/favicon.ico`` is 404): the registry's
  page made by prometheus-client (``choose_encoder`` for the ``Accept`` header: text or OpenMetrics;
  ``name[]`` filters; gzip when accepted), in one thread of its own, one page at a time, so the loop is
  not held for the ~2 ms a page takes. That thread is the only one the listener adds.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted

from gamead_core.listen import bind_listener

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 32  #: connections served at once
BACKLOG = 64  #: the listen backlog (connections the kernel holds before they are accepted)
READ_TIMEOUT = 5.0  #: seconds for a whole request, from the connection's opening or the previous answer
MAX_HEAD_BYTES = 8 * 1024  #: request line + header fields, bytes
MAX_HEADERS = 64  #: header fields
MAX_REQUESTS = 100  #: requests answered on one connection (keep-alive), then it is closed

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
            413: "Content Too Large", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
            503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request head: ``method``, ``path``, ``query`` (str), lower-case ``headers``, ``keep_alive``."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    keep_alive: bool


def parse_head(head: bytes) -> Request | tuple[int, str]:
    """The request of ``head`` (the bytes before the blank line, CRLF line ends), or ``(status, message)`` when
    it is refused (400 malformed, 431 too many fields, 413 a body). Pure."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1"):
        return 400, "not an HTTP/1.x request line"
    if len(lines) - 1 > MAX_HEADERS:
        return 431, f"more than {MAX_HEADERS} header fields"
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            return 400, "a malformed header field"
        headers[name.lower()] = value.strip(" \t")
    if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
        return 413, "a scrape has no body"
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if parts[2] == "HTTP/1.1" else "keep-alive" in connection
    path, _, query = parts[1].partition("?")
    return Request(parts[0], path, query, headers, keep_alive)


def render(registry: CollectorRegistry, request: Request) -> tuple[bytes, list[tuple[str, str]]]:
    """The page (bytes) and its headers for ``request``: prometheus-client's encoder for its ``Accept``, the
    ``name[]`` series only when given, gzip when ``Accept-Encoding`` allows. Runs in the listener's thread."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    names = parse_qs(request.query).get("name[]")
    body = encoder(registry.restricted_registry(names) if names else registry)
    headers = [("Content-Type", content_type), ("Cache-Control", "no-store")]
    if gzip_accepted(request.headers.get("accept-encoding", "")):
        body = gzip.compress(body)
        headers.append(("Content-Encoding", "gzip"))
    return body, headers


def response(status: int, body: bytes, headers: list[tuple[str, str]], *, close: bool, head: bool = False) -> bytes:
    """One HTTP/1.1 response's bytes (``head``: without the body, Content-Length still the body's). Pure."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}", *(f"{n}: {v}" for n, v in headers),
             f"Content-Length: {len(body)}"]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body)


def _plain(status: int, message: str) -> bytes:
    return response(status, f"{message}\n".encode(), [("Content-Type", "text/plain; charset=utf-8")], close=True)


class MetricsServer:
    """Serves ``registry`` on ``host:port`` (module docstring for the bounds). :meth:`start`, then :meth:`close`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.connections: dict[_Connection, None] = {}  #: open, oldest first
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._pool: ThreadPoolExecutor | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (0 = a free one; sets :attr:`port`). Raises
        :class:`~gamead_core.errors.ConfigError` when it cannot bind (``worker.metrics_port``)."""
        sock = bind_listener(host, port, "worker.metrics_port", backlog=BACKLOG)
        sock.set_inheritable(False)
        self.port = int(sock.getsockname()[1])
        self._server = await asyncio.get_running_loop().create_server(lambda: _Connection(self), sock=sock)

    async def close(self) -> None:
        """Stop listening, drop every connection and the page thread."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def admit(self, conn: _Connection) -> bool:
        """Count ``conn`` in, closing the oldest connection not being answered when at the cap; False (refused)
        when every connection is being answered."""
        if len(self.connections) >= MAX_CONNECTIONS:
            idle = next((c for c in self.connections if not c.answering), None)
            if idle is None:
                return False
            self.connections.pop(idle, None)
            idle.drop()
        self.connections[conn] = None
        return True

    async def page(self, request: Request) -> tuple[bytes, list[tuple[str, str]]]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gamead-metrics")
        return await asyncio.get_running_loop().run_in_executor(self._pool, render, self.registry, request)


class _Connection(asyncio.Protocol):
    def __init__(self, server: MetricsServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.answering = False  #: a request is being answered (its page made or being written)
        self.answered = 0
        self.write_paused = False
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None
        self.transport: asyncio.Transport = None  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if not self.server.admit(self):
            self.transport.write(_plain(503, f"more than {MAX_CONNECTIONS} connections at once"))
            self.transport.close()
            return
        self.transport.set_write_buffer_limits(high=0)  # paused while an answer is still unsent
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.pop(self, None)
        if self.timer is not None:
            self.timer.cancel()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if not self.answering:
            self._next()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > MAX_HEAD_BYTES + 4:  # more than one request head: wait until it is answered
            self.transport.pause_reading()
        if not self.answering and not self.write_paused:
            self._next()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(READ_TIMEOUT, self._timed_out)

    def drop(self) -> None:
        """Close at once: an answer still unsent is dropped (a client that does not read is not waited for)."""
        if self.transport.get_write_buffer_size():
            self.transport.abort()
        else:
            self.transport.close()

    def _timed_out(self) -> None:
        self.timer = None
        if self.answering:
            return
        if self.write_paused or self.transport.is_closing():  # the client did not take the last answer
            self.transport.abort()
        elif self.buffer:
            self._refuse(408, f"the request was not received whole within {READ_TIMEOUT:g}s")
        else:
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        self._last(_plain(status, message))

    def _last(self, data: bytes) -> None:
        """Write ``data`` and close; a client that has not taken it by the deadline is cut off."""
        self.transport.write(data)
        self.transport.close()
        self._arm()

    def _next(self) -> None:
        """Answer the request whole in the buffer, if any; refuse one that cannot fit."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or end > MAX_HEAD_BYTES:
            if end > MAX_HEAD_BYTES or len(self.buffer) > MAX_HEAD_BYTES:
                self._refuse(431, f"the request line and headers exceed {MAX_HEAD_BYTES} bytes")
            return
        parsed = parse_head(bytes(self.buffer[:end]))
        del self.buffer[:end + 4]
        if isinstance(parsed, tuple):
            self._refuse(*parsed)
            return
        self.answering = True
        if self.timer is not None:
            self.timer.cancel()
        self.task = asyncio.get_running_loop().create_task(self._answer(parsed))

    async def _answer(self, request: Request) -> None:
        self.answered += 1
        close = not request.keep_alive or self.answered >= MAX_REQUESTS
        head = request.method == "HEAD"
        if request.method not in ("GET", "HEAD"):
            out = response(405, b"use GET\n", [("Allow", "GET, HEAD")], close=close)
        elif request.path == "/favicon.ico":
            out = response(404, b"", [], close=close, head=head)
        else:
            try:
                body, headers = await self.server.page(request)
                out = response(200, body, headers, close=close, head=head)
            except Exception:  # noqa: BLE001 - a collector's fault is a 500 for this scrape, not the worker's end
                log.exception("worker metrics page failed")
                out, close = _plain(500, "the metrics page failed (the worker's log says why)"), True
        self.answering = False
        if self.transport.is_closing():
            return
        if close:
            self._last(out)
            return
        self.transport.write(out)
        self._arm()
        self.transport.resume_reading()
        if not self.write_paused:
            self._next()


__all__ = ["BACKLOG", "MAX_CONNECTIONS", "MAX_HEAD_BYTES", "MAX_HEADERS", "MAX_REQUESTS", "READ_TIMEOUT",
           "MetricsServer", "Request", "parse_head", "render", "response"]
