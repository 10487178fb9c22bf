"""A worker's ``/metrics`` listener (``worker.metrics_port``): uvicorn on the worker's own event loop, serving
prometheus-client's ASGI app (``make_asgi_app``: text or OpenMetrics by ``Accept``, ``name[]`` filters, gzip when
accepted) through the API's bounded httptools protocol (:mod:`gamead_core.api.http_limits`) with limits for a
scrape.

Why: prometheus-client's ``start_http_server`` starts one thread per connection, with no cap and no read timeout,
so 3,000 connections trickling their headers took a worker from 72 MB to 236 MB and 5,202 threads and silenced its
heartbeat until ``gamead up`` killed it as wedged (attack25, finding 1). uvicorn, not an HTTP server of our own
(house rule 8: outside the core, a well-kept library beats our code). The bounds (fixed, no settings):

* at most :data:`MAX_CONNECTIONS` connections: past it, connections waiting for a request (none sent yet, or
  idle after an answer) are closed, oldest first: when a connection opens, those open for at least
  :data:`EVICT_MIN_AGE` seconds; when a request has arrived whole, any. So a client holding connections open
  cannot keep a scrape out, and a scrape whose request arrives whole within :data:`EVICT_MIN_AGE` seconds of
  its connecting is not closed by newer connections, however fast they come. Not guaranteed: a scrape is
  answered ``503`` (uvicorn's ``limit_concurrency``) while :data:`MAX_CONNECTIONS` other requests are being
  answered; a scrape whose head is still arriving may be closed to make room for a request that arrived whole,
  after :data:`EVICT_MIN_AGE` seconds for a new connection, or at once by a client opening over
  :data:`HARD_CONNECTIONS` connections a second (then the oldest waiting connections go whatever their age, so a
  scrape that sends its request as it connects, as Prometheus does, still gets in: the new connection is closed
  only when :data:`HARD_CONNECTIONS` requests are all being answered). A connection whose client's bytes came but
  wait unread in the kernel spoke and is not closed for room (the API's rule, :func:`gamead_core.api.conn_cap.speaks`;
  scrape55: a loaded worker makes the connections it accepts before it reads a scrape already whole in the kernel,
  which was closed for them, its scraper reading nothing, a gap in the series) until the listener reads it; a
  client whose answer stalled is closed all the same. Past ``conn_cap.PASSED_OVER_AT_MOST`` such connections
  passed over, no more is closed for that newcomer (over :data:`HARD_CONNECTIONS`, the newcomer is closed).
  Each connection closed for room counts in ``gamead_connections_closed_for_room_total``, a newcomer closed at once
  in ``gamead_connections_refused_total``: the API's names (:mod:`gamead_core.telemetry.conn_metrics`).
  The kernel's listen backlog is :data:`BACKLOG`;
* a request must arrive whole within :data:`READ_TIMEOUT` seconds of the connection's opening or of its first
  byte (a deadline, not per byte): ``408``, or just closed when it never sent a byte; an idle keep-alive
  connection is closed after :data:`READ_TIMEOUT` seconds too (uvicorn's ``timeout_keep_alive``);
* request line and headers at most :data:`MAX_HEAD_BYTES` bytes and :data:`MAX_HEADERS` fields (``431``), the
  request target at most :data:`MAX_REQUEST_LINE` bytes (``414``); a body is ``413``; a method other than
  ``GET``/``HEAD`` is ``405``; a header or query string that is not ASCII is ``400`` (prometheus-client would
  raise on it: a ``500`` and a traceback in the worker's log for every such request).

The page is built on the worker's event loop (~2 ms, more gzipped), the loop that sends heartbeats and settles
ads, so it is built at most once per :data:`CACHE_SECONDS` per variant (content type chosen by ``Accept``, gzip
or not, the ``name[]`` filters) and the same bytes are sent to every scrape of that variant meanwhile: a
scrape flood costs a few builds a second, and a scraped figure is at most :data:`CACHE_SECONDS` old. Only a
client varying ``name[]`` on every request costs a build each (a filtered page: the matching series only).
"""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from prometheus_client import CollectorRegistry, make_asgi_app
from prometheus_client.exposition import choose_encoder, gzip_accepted

from gamead_core.api.conn_cap import PASSED_OVER_AT_MOST, say, spoke
from gamead_core.api.http_limits import HttpLimits
from gamead_core.api.protocol import bounded_protocol
from gamead_core.listen import bind_listener
from gamead_core.telemetry.conn_metrics import count, scrape_counters

MAX_CONNECTIONS = 32  #: connections served at once
EVICT_MIN_AGE = 1.0  #: seconds a connection is kept at least when newer connections want its place
HARD_CONNECTIONS = 2 * MAX_CONNECTIONS  #: connections open at most (past it the oldest waiting go, whatever their age)
#: this listener's ``gamead_connections_refused`` and ``…_closed_for_room`` (its bound in their help)
SCRAPES_REFUSED, SCRAPES_CLOSED_FOR_ROOM = scrape_counters(kept=MAX_CONNECTIONS, open_at_most=HARD_CONNECTIONS)
BACKLOG = 64  #: the listen backlog (connections the kernel holds before they are accepted)
READ_TIMEOUT = 5.0  #: seconds for a whole request; also the idle keep-alive time
MAX_HEAD_BYTES = 8 * 1024  #: request line + header fields, bytes
MAX_HEADERS = 64  #: header fields
MAX_REQUEST_LINE = 2 * 1024  #: the request target, bytes
#: the bounded protocol's limits for a scrape: no body (a chunk that is still arriving is refused by its size line;
#: any request with a body by :func:`scrape_app`)
SCRAPE_LIMITS = HttpLimits(max_request_line=MAX_REQUEST_LINE, max_header_bytes=MAX_HEAD_BYTES,
                           max_headers=MAX_HEADERS, read_timeout=READ_TIMEOUT, max_body=0, max_batch_body=0)
CACHE_SECONDS = 1.0  #: how long a built page is served again to scrapes asking for the same variant
_CACHED_VARIANTS = 16  #: page variants kept at once (content type x gzip x name[] filters)
_SHUTDOWN_SECONDS = 2  #: how long :meth:`MetricsListener.close` lets answers being written finish


class ScrapeProtocol(bounded_protocol(SCRAPE_LIMITS)):  # type: ignore[misc]
    """The bounded protocol with :data:`SCRAPE_LIMITS` that keeps at most :data:`MAX_CONNECTIONS` connections by
    closing ones waiting for a request (none sent yet, or idle after an answer), oldest first: when a connection
    opens, those older than :data:`EVICT_MIN_AGE` seconds, and any once :data:`HARD_CONNECTIONS` are open; when a
    request has arrived whole, any. The new connection is closed at once only when :data:`HARD_CONNECTIONS` others
    are all being answered. A connection whose request came but waits unread in the kernel is passed over
    (:func:`_spoke`), at most :data:`~gamead_core.api.conn_cap.PASSED_OVER_AT_MOST` per room made."""

    def connection_made(self, transport: Any) -> None:
        self._passed: tuple[Any, int] | None = None  #: (cycle, reads) when last passed over as a speaker (_spoke)
        super().connection_made(transport)
        self.opened = self.loop.time()
        self._make_room(self.opened - EVICT_MIN_AGE)
        if len(self._others()) >= HARD_CONNECTIONS:  # all too young: the oldest waiting go anyway, not the newcomer
            self._make_room(float("inf"))
        if len(self._others()) >= HARD_CONNECTIONS:  # every one of them is being answered, or spoke (_spoke)
            transport.close()
            self.connections.discard(self)
            count(SCRAPES_REFUSED)

    def on_headers_complete(self) -> None:
        self._make_room(float("inf"))  # a request beats connections that have not sent one
        super().on_headers_complete()

    def _others(self) -> list[Any]:
        # a closing one still holding bytes of an answer keeps its descriptor (a close waits for them): counted
        return [c for c in self.connections
                if c is not self and (not c.transport.is_closing() or c.transport.get_write_buffer_size())]

    def _make_room(self, opened_by: float) -> None:
        """Close the oldest connections waiting for a request opened by ``opened_by`` (loop time, seconds)
        until this one fits in :data:`MAX_CONNECTIONS` (or none is left to close), passing over those whose
        request came unread (:func:`_spoke`; after :data:`~gamead_core.api.conn_cap.PASSED_OVER_AT_MOST` of them,
        no more is closed)."""
        others = self._others()
        if len(others) < MAX_CONNECTIONS:
            return
        waiting = sorted((c for c in others if (c.cycle is None or c.cycle.response_complete)
                          and _opened(c) <= opened_by), key=_opened)
        room, passed = len(others) + 1 - MAX_CONNECTIONS, 0
        for conn in waiting:
            if room <= 0 or passed >= PASSED_OVER_AT_MOST:
                return
            if _spoke(conn):  # its request came, unread yet (scrape55): kept, judged once read
                passed += 1
                continue
            conn._cut()  # aborted: a close would keep the descriptor until a client that does not read had read
            # (attack34a F1)
            # out of the count now, not at its connection_lost (a later loop turn): uvicorn's limit_concurrency
            # counts this set, and a scrape read in the same turn would be a 503
            self.connections.discard(conn)
            count(SCRAPES_CLOSED_FOR_ROOM)
            room -= 1


def _spoke(conn: Any) -> bool:
    """Whether a waiting connection's client spoke and the listener has not read it yet, the API's rule
    (:func:`gamead_core.api.conn_cap.speaks`): bytes unread in the kernel, its answer not stalled, not read since
    it was last passed over in this wait (a wait is one value of ``conn.cycle``: None before the first request,
    then the request answered last). Marks ``conn`` passed over when so."""
    mark = conn._passed
    if not spoke(conn, mark[1] if mark is not None and mark[0] is conn.cycle else None):
        return False
    conn._passed = (conn.cycle, conn._reads)
    return True


def _opened(conn: Any) -> float:
    return getattr(conn, "opened", 0.0)


def scrape_app(registry: CollectorRegistry) -> Any:
    """An ASGI app: prometheus-client's page of ``registry`` for ``GET``/``HEAD``, built at most once per
    :data:`CACHE_SECONDS` per page variant (:func:`_variant`) and replayed meanwhile; ``405`` for another method,
    ``413`` for a request with a body (``Transfer-Encoding``, or a ``Content-Length`` other than 0), ``400`` for a
    header or query string that is not ASCII (the library would raise ``UnicodeDecodeError`` on it: a ``500`` and
    a traceback in the worker's log per request); the text format for an ``Accept`` the library cannot read;
    ``500`` if building the page fails anyway, said in one WARNING line per ``LOG_EVERY`` s (``conn_cap.say``),
    never a traceback per request."""
    page = make_asgi_app(registry=registry)
    built: dict[tuple[str, bool, tuple[str, ...]], tuple[float, list[dict[str, Any]]]] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope["headers"])
        if scope["method"] not in ("GET", "HEAD"):
            status, text, extra = 405, b"use GET\n", [(b"allow", b"GET, HEAD")]
        elif b"transfer-encoding" in headers or headers.get(b"content-length", b"0").strip() != b"0":
            status, text, extra = 413, b"a scrape has no body\n", []
        elif not scope["query_string"].isascii() or not all(n.isascii() and v.isascii() for n, v in scope["headers"]):
            status, text, extra = 400, b"headers and query string must be ASCII\n", []
        else:
            scope = _text_unless_accept_parses(scope)
            key = _variant(scope)
            now = time.monotonic()
            cached = built.get(key)
            if cached is None or now - cached[0] >= CACHE_SECONDS:
                sent: list[dict[str, Any]] = []

                async def keep(message: dict[str, Any]) -> None:
                    sent.append(message)

                try:
                    await page(scope, receive, keep)
                except Exception as exc:  # noqa: BLE001 - a library failure on a client's request: one line a while
                    say("metrics_page_failed", now, "the /metrics page failed: %s: %s", type(exc).__name__, exc)
                    sent = [{"type": "http.response.start", "status": 500,
                             "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]},
                            {"type": "http.response.body", "body": b"the page could not be built\n"}]
                    for message in sent:
                        await send(message)
                    return
                if not sent:  # the client left before the page was sent: nothing to keep
                    return
                if len(built) >= _CACHED_VARIANTS:
                    built.clear()  # variants past the bound (a client varying name[]): start again
                cached = built[key] = (now, sent)
            for message in cached[1]:
                await send(message)
            return
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"), *extra]})
        await send({"type": "http.response.body", "body": text})

    return app


def _text_unless_accept_parses(scope: dict[str, Any]) -> dict[str, Any]:
    """``scope`` without its ``Accept`` headers when prometheus-client cannot read them (``application/openmetrics-text;
    version=x``: its version compare raises ``TypeError``, a ``500`` and a traceback per request), so such a
    scrape gets the text format, as one with no ``Accept`` (and as the API's ``/metrics`` always serves)."""
    accept = ",".join(v.decode() for n, v in scope["headers"] if n.lower() == b"accept")
    try:
        choose_encoder(accept)
    except Exception:  # noqa: BLE001 - any header the library cannot parse, not only today's TypeError
        return {**scope, "headers": [(n, v) for n, v in scope["headers"] if n.lower() != b"accept"]}
    return scope


def _variant(scope: dict[str, Any]) -> tuple[str, bool, tuple[str, ...]]:
    """Which page a scrape gets, as prometheus-client decides it: (content type by ``Accept``, gzip by
    ``Accept-Encoding``, the ``name[]`` filters). The headers are ASCII (checked by :func:`scrape_app`)."""
    accept = ",".join(v.decode() for n, v in scope["headers"] if n.lower() == b"accept")
    encoding = ",".join(v.decode() for n, v in scope["headers"] if n.lower() == b"accept-encoding")
    names = parse_qs(scope["query_string"].decode()).get("name[]", [])
    return choose_encoder(accept)[1], gzip_accepted(encoding), tuple(sorted(set(names)))


class MetricsListener:
    """uvicorn serving a registry on a bound socket (:func:`serve_metrics`); :attr:`port`, then :meth:`close`."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.port = int(sock.getsockname()[1])

    async def close(self) -> None:
        """Stop listening and close every connection (an answer still being written gets a moment to finish)."""
        try:
            await self.server.shutdown(sockets=[self.sock])
        finally:
            self.sock.close()
            for conn in list(self.server.server_state.connections):
                conn.transport.abort()


async def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsListener:
    """Serve ``registry`` on ``host:port`` (0 = a free one) from this event loop, bounded as the module docstring
    says; no signal handlers are installed (uvicorn's ``startup``, not ``serve``). Raises
    :class:`~gamead_core.errors.ConfigError` when it cannot bind (``worker.metrics_port``)."""
    sock = bind_listener(host, port, "worker.metrics_port", backlog=BACKLOG)
    sock.set_inheritable(False)
    config = uvicorn.Config(scrape_app(registry), http=ScrapeProtocol, interface="asgi3", lifespan="off",
                            limit_concurrency=MAX_CONNECTIONS + 1,  # uvicorn counts the connection asking too
                            timeout_keep_alive=int(READ_TIMEOUT), timeout_graceful_shutdown=_SHUTDOWN_SECONDS,
                            backlog=BACKLOG, access_log=False, log_config=None, proxy_headers=False,
                            server_header=False, date_header=False)
    try:
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
    except BaseException:
        sock.close()
        raise
    return MetricsListener(server, sock)


__all__ = ["BACKLOG", "CACHE_SECONDS", "EVICT_MIN_AGE", "HARD_CONNECTIONS", "MAX_CONNECTIONS", "MAX_HEADERS",
           "MAX_HEAD_BYTES", "MAX_REQUEST_LINE", "READ_TIMEOUT", "SCRAPE_LIMITS", "MetricsListener",
           "ScrapeProtocol", "scrape_app", "serve_metrics"]
