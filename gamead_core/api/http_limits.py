"""Bounded HTTP/1.1 framing for ``gamead serve``: a small subclass of uvicorn's httptools protocol.

Why a subclass: neither uvicorn's httptools protocol nor httptools itself bounds a request head. llhttp
parses any size, httptools concatenates a header's fragments into one Python ``bytes`` (quadratic copying
too) and uvicorn appends every header to a list, so ten connections each sending an unfinished 50 MB header
took the API from 145 MB to 679 MB RSS (issue 11), and a complete 50 MB header got a 200. uvicorn's
``h11_max_incomplete_event_size`` applies only to the h11 protocol (pure Python, slower than httptools on the
hot path); ``limit_concurrency`` counts connections and tasks, not bytes, and answers plain text; nothing in
uvicorn times out a client that trickles its head or body (``timeout_keep_alive`` covers only the idle time
*between* requests). So the bounds are checked where the bytes arrive, for about 3-4 µs of CPU per request
(``benchmarks/bench_http_limits.py``); with them the same attack moves RSS by about 1 MB:

* **request target** longer than ``api.max_request_line_bytes`` → ``414 request_line_too_long``;
* **request line + header fields** over ``api.max_header_bytes``, counted on the raw bytes of a head that is
  still incomplete (so an unfinished head never holds more than the limit plus one socket read) and on the
  parsed fields of a complete one → ``431 headers_too_large``;
* more than ``api.max_headers`` header fields → ``431 too_many_headers``;
* a request not received whole (line, headers and body) within ``api.read_timeout`` of the connection's
  opening or of its first byte → ``408 request_timeout`` (a connection that never sent a byte is just
  closed); only time the server reads counts: the deadline stops while the server keeps from reading (a
  pipelined request waiting for the one before it, a body waiting for its application) and goes on with what
  was left when reading resumes (:mod:`gamead_core.api.refusal_order`); idle keep-alive connections close after
  ``api.keep_alive_timeout`` (uvicorn's own timer);
* malformed framing → ``400 bad_request``, a chunk size line not hex (llhttp) or over
  :data:`~gamead_core.api.chunk_lines.MAX_CHUNK_LINE`, and so a trailer after the last chunk
  (:mod:`gamead_core.api.chunk_lines`);
* a chunk size over the route's body cap → ``413 payload_too_large`` once its size line is read (a stalled
  ``FFFFFFFFFFFFFFFF`` chunk was a 408 after ``api.read_timeout``), the cap of the middleware's byte count;
* a ``Content-Encoding`` other than ``identity`` → ``415 unsupported_media_type``: bodies are read as sent, never
  decompressed (so no gzip bomb can grow in the API), and a compressed one would otherwise be answered as bad
  JSON, or, for ``br`` on a plain body, taken as if the header were not there (attack14a);
* a transfer coding whose last coding is not ``chunked`` → llhttp's ``400`` (RFC 9112 §6.3). One other than
  ``chunked`` before a final ``chunked`` (``Transfer-Encoding: gzip, chunked``) is framed here as chunked and
  refused ``501 not_implemented`` by the API's gate middleware (:func:`coding_refusal`), an ordinary answer in
  request order: refused here, in the head, one pipelined behind another request closed the connection without
  either answer (attack27b F2).

Every refusal is the API's JSON error shape with ``Connection: close``, after the answers of the requests
pipelined before it on the connection; then the connection is closed with a linger
(:mod:`gamead_core.api.refusal_order`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools

from gamead_core.api.body_caps import body_cap
from gamead_core.api.chunk_lines import NOT_CHUNKED, SIZE_LINE, ChunkLines
from gamead_core.api.http_sweep import start_sweeper
from gamead_core.api.refusal_order import InOrderRefusals, Refusal
from gamead_core.api.write_watch import TimedWrites
from gamead_core.config import ApiSettings


#: allowance for the method, version and separators around the request target in a head's byte count
_LINE_OVERHEAD = 16
#: ``": "`` and CRLF around each header field in a head's byte count
_FIELD_OVERHEAD = 4


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The limits of :class:`BoundedHttpToolsProtocol` (bytes, a count, seconds)."""

    max_request_line: int = 8 * 1024
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    read_timeout: float = 15.0
    max_body: int = 64 * 1024  #: ``api.max_body_bytes``
    max_batch_body: int = 2 * 1024 * 1024  #: ``api.batch_max_body_bytes`` (the batch route's)
    max_connections: int = 0  #: ``api.max_connections`` in force (:mod:`gamead_core.api.conn_cap`); 0: unbounded
    write_timeout: float = 30.0  #: ``api.write_timeout`` (:mod:`gamead_core.api.write_watch`)
    max_unsent: int = 256 * 1024 * 1024  #: ``api.max_unsent_bytes``: answers' bytes all transports buffer at most

    @classmethod
    def from_settings(cls, api: ApiSettings, max_connections: int = 0) -> HttpLimits:
        """The limits of ``api``; ``max_connections``: the connection bound in force (0: none)."""
        return cls(api.max_request_line_bytes, api.max_header_bytes, api.max_headers, api.read_timeout,
                   api.max_body_bytes, api.batch_max_body_bytes, max_connections, api.write_timeout,
                   api.max_unsent_bytes)

    def body_cap(self, url: bytes) -> tuple[int, str]:
        """The body cap of a request target (bytes) and the setting it comes from."""
        return body_cap(url.partition(b"?")[0].decode("latin-1"), self.max_body, self.max_batch_body)


#: the ``Content-Encoding`` values of a body read as sent (RFC 9110 §8.4: ``identity`` is no encoding at all)
_IDENTITY = frozenset({b"", b"identity"})
_ENCODED = Refusal(415, "unsupported_media_type", "the API does not decode a Content-Encoding: send the body "
                   "uncompressed, without that header (or Content-Encoding: identity)")


#: llhttp's words that tell a client nothing, said as what it sent (attack47 F9: ``User callback error``)
_PARSER_WORDS = {"Pause on PRI/Upgrade": "it began with HTTP/2's connection preface (PRI * HTTP/2.0): the API speaks "
                 "HTTP/1.1 only", "User callback error": "its head could not be read"}


def target_refusal(url: bytes) -> Refusal:
    """``400 bad_request`` for a request target that is neither a path nor an absolute URL (uvicorn cannot parse
    it): ``CONNECT 127.0.0.1:22`` was ``the request is not valid HTTP/1.1: User callback error`` (attack47 F9)."""
    return Refusal(400, "bad_request", f"the request target {url[:60].decode('latin-1')!r} is not a path (such as "
                   "/ads) nor an absolute URL: the API serves paths, and is no proxy to CONNECT through")


def coding_refusal(value: bytes) -> Refusal | None:
    """``501 not_implemented`` naming the first transfer coding but ``chunked`` in a ``Transfer-Encoding`` field
    ``value`` (raw bytes, any case, parameters ignored), or None if it names only ``chunked`` (RFC 9112 §6.1: a
    server answers 501 to a transfer coding it does not understand; attack27 F8: it was read as a plain body)."""
    codings = (c.partition(b";")[0].strip() for c in value.lower().split(b","))
    coding = next((c for c in codings if c and c != b"chunked"), None)
    if coding is None:
        return None
    return Refusal(501, "not_implemented", f"the API applies no transfer coding but chunked, not "
                   f"{coding[:40].decode('latin-1')!r} (RFC 9112 §6.1): send the body with Transfer-Encoding: "
                   f"chunked alone, or with a Content-Length")


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; httptools re-raises it as a parser error."""


class BoundedHttpToolsProtocol(ChunkLines, TimedWrites, InOrderRefusals):
    """uvicorn's httptools protocol with bounded heads, a read timeout and JSON refusals (module docstring).

    Hot-path cost, measured by ``benchmarks/bench_http_limits.py``: a counter per header field, a clock read
    per request and a few comparisons. Read deadlines are checked by one sweep of the server's connections
    every :func:`gamead_core.api.http_sweep.sweep_interval` (not a timer per request: a uvloop timer costs more).
    """

    limits: ClassVar[HttpLimits] = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_message = False  #: between a request's first byte and its last
        self._in_head = False  #: between a request's first byte and the end of its headers
        self._raw_head = 0  #: raw bytes received, in earlier reads, while the current head was incomplete
        self._begun_here, self._body_here = False, 0  #: a message began in the read parsed; body bytes since a head
        self._chunk = 0  #: size of the read being parsed
        self._reads = 0  #: reads of this connection so far (conn_cap: has the API read it since it passed it over?)
        self._fields = 0
        self._deadline: float | None = None  #: loop time by which the current request must be whole
        self._read_left: float | None = None  #: seconds left of the deadline, while the server keeps from reading
        self._refusal: Refusal | None = None
        self._te_chunked = False  #: the current head said Transfer-Encoding: chunked
        #: where the current chunked body is (chunk_lines: a size line, a chunk's data, its trailer), an unfinished
        #: size line from earlier reads, a size line ended in the read parsed, its trailer's bytes so far, the bytes
        #: of the chunk in progress in the read parsed
        self._reset_framing(NOT_CHUNKED)

    # --- connection ------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline = self.loop.time() + self.limits.read_timeout
        start_sweeper(self.loop, self.server_state, self.limits.read_timeout, self.limits.write_timeout,
                      self.limits.max_unsent)

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline = self._read_left = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """The server stops (SIGTERM): a request whose body is still coming, not yet answered, is cut at once (its
        handler gets ``http.disconnect``: nothing was received whole, so nothing was done); uvicorn waited for it
        until ``timeout_graceful_shutdown`` (10 s), then cancelled its task with a traceback per connection
        (attack29c F7: 136 slow bodies, 136 tracebacks and a 10 s drain). So is an answer whose client acknowledged
        nothing since the last sweep, at once or as soon as it stalls (:mod:`gamead_core.api.write_watch`; attack34a
        F1: 4 never-reading readers, 4 tracebacks and the same 10 s). Other requests finish as before."""
        self._stopping = True  # an answer that stalls from now on is cut at once (TimedWrites.write_checked)
        if self._watch is not None and self._watch.stalled:  # its client reads nothing: its handler waits in
            self._cut()  # drain(), which would hold the stop for the graceful 10 s and end in a traceback
            return
        cycle = self.cycle  # the newest request: cut only if it is the one running (review29b F1: one queued behind
        # a whole POST waiting on its ack took that POST's 202 down with it)
        if cycle is not None and cycle is self._running and cycle.more_body and not cycle.response_started:
            self.transport.close()
            return
        super().shutdown()

    def _should_upgrade_to_ws(self) -> bool:
        return False  # gamead serves no WebSocket: an Upgrade is ignored and the request answered as HTTP (below)

    def _upgrade_ignored(self) -> None:
        """A request asking to switch protocols (``Upgrade: websocket``, ``h2c``) is served as HTTP/1.1 (RFC 9110
        §7.8: a server may ignore ``Upgrade``), then the connection closed: the parser reads nothing past an upgrade
        (one with a body is 400: :meth:`on_headers_complete`). attack38b F3: uvicorn's WebSocket protocol answered
        a text/plain 400 or an empty 403, no ``code``, and logged two warnings a request."""
        if self.cycle is not None:
            self.cycle.keep_alive = False

    def _declares_body(self) -> bool:
        """The head says a body follows (a ``Content-Length`` other than 0, or a ``Transfer-Encoding``): with an
        ``Upgrade`` the parser would take that body for the next protocol's bytes and hand the route none."""
        return any(name == b"transfer-encoding" or (name == b"content-length" and value.strip(b" \t0"))
                   for name, value in self.headers)

    def _reading_changed(self, reading: bool) -> None:
        """The server paused (``reading`` False) or resumed reading: the read deadline stops, keeping the seconds
        left in ``_read_left``, and goes on with them (so only time the server reads counts; review28 P1)."""
        if reading:
            if self._read_left is not None:
                self._deadline, self._read_left = self.loop.time() + self._read_left, None
        elif self._deadline is not None:
            self._deadline, self._read_left = None, max(0.0, self._deadline - self.loop.time())

    def data_received(self, data: bytes) -> None:
        self._reads += 1
        if self._lingering or self._held is not None:
            return  # refused: read and dropped until the linger ends (none comes while held: reading is paused)
        self._unset_keepalive_if_required()
        self._chunk, self._begun_here, self._body_here = len(data), False, 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgrade_ignored()
            return
        except httptools.HttpParserError as exc:
            self._refuse(self._refusal or Refusal(400, "bad_request", "the request is not valid HTTP/1.1: "
                                                  f"{_PARSER_WORDS.get(str(exc), exc)}"))
            return
        if self._framing:
            self._check_chunk_line(data)
        if self._in_head:  # an unfinished head: bound what the parser may be holding
            self._raw_head += self._head_bytes_in(data) if self._begun_here else len(data)
            if self._raw_head > self.limits.max_header_bytes:
                self._refuse(self._line_too_long() if len(self.url) > self.limits.max_request_line
                             else self._too_large())

    # --- parser callbacks -------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_message = self._in_head = self._begun_here = True
        self._raw_head = self._fields = 0
        if self._deadline is None and self._read_left is None:  # else the connection's, from its opening
            if self.flow.read_paused:  # pipelined, parsed from a read before reading was paused
                self._read_left = self.limits.read_timeout
            else:
                self._deadline = self.loop.time() + self.limits.read_timeout

    def on_header(self, name: bytes, value: bytes) -> None:
        # Counted here, not at the end of the head: 16 KiB of 4-byte fields would otherwise keep ~4,000
        # (name, value) tuples alive per slow connection, 30 times the bytes received.
        self._fields += 1
        if self._fields > self.limits.max_headers:
            self._stop(Refusal(431, "too_many_headers",
                               f"more than {self.limits.max_headers:,} header fields (api.max_headers)"))
        # the body of uvicorn's HttpToolsProtocol.on_header, inlined: a super() call per field is measurable.
        # llhttp drops the leading whitespace of a value and keeps the trailing; RFC 9110 §5.5 excludes both from
        # the field value, so every reader (Idempotency-Key, X-Request-Id, If-Match…) gets the value as meant.
        name = name.lower()
        value = value.rstrip(b" \t")
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        elif name == b"content-encoding" and value.strip().lower() not in _IDENTITY:
            self._stop(_ENCODED)
        elif name == b"transfer-encoding":  # another coding too: the gate middleware's 501 (coding_refusal)
            self._te_chunked = self._te_chunked or b"chunked" in value.lower()
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        limits = self.limits
        if len(self.url) > limits.max_request_line:
            self._stop(self._line_too_long())
        # A head that fits in the bytes seen so far fits the limit; only a big read needs the exact count.
        if self._raw_head + self._chunk > limits.max_header_bytes and self._head_size() > limits.max_header_bytes:
            self._stop(self._too_large())
        if self._te_chunked:
            self._reset_framing(SIZE_LINE)
            self._te_chunked = False
        self._body_here = 0
        if self.parser.should_upgrade() and self._declares_body():
            self._stop(Refusal(400, "bad_request", "a request with a body cannot ask to switch protocols (Upgrade): "
                               "the API speaks HTTP/1.1 only; send it without the Upgrade header"))
        try:
            super().on_headers_complete()
        except httptools.HttpParserInvalidURLError:  # uvicorn parses the target: CONNECT's host:port is none
            self._stop(target_refusal(self.url))

    def on_body(self, body: bytes) -> None:
        self._chunk_read += len(body)
        self._body_here += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        self._reset_framing(NOT_CHUNKED)
        self._deadline = self._read_left = None
        super().on_message_complete()

    # --- refusing -----------------------------------------------------------------------------------------

    def _head_bytes_in(self, data: bytes) -> int:
        """The bytes of ``data`` (a read in which the unfinished head began) that are that head's: those after the
        last head end in it, less the body bytes that followed that end. attack38b F4: the whole read was counted,
        so a read holding 3,763 whole pipelined 36-byte GETs and the start of the next was refused 431."""
        end = data.rfind(b"\r\n\r\n")
        return max(len(data) - (end + 4 if end >= 0 else 0) - self._body_here, 0)

    def _head_size(self) -> int:
        return _LINE_OVERHEAD + len(self.url) + sum(len(n) + len(v) + _FIELD_OVERHEAD for n, v in self.headers)

    def _line_too_long(self) -> Refusal:
        return Refusal(414, "request_line_too_long", f"the request target is longer than "
                       f"{self.limits.max_request_line:,} bytes (api.max_request_line_bytes)")

    def _too_large(self) -> Refusal:
        return Refusal(431, "headers_too_large", f"the request line and headers exceed "
                       f"{self.limits.max_header_bytes:,} bytes (api.max_header_bytes)")

    def _stop(self, refusal: Refusal) -> None:
        self._refusal = refusal
        raise _Refused(refusal.code)

    def read_timed_out(self) -> None:
        """The request was not received whole in time, or a held refusal waited too long (called by the sweeper)."""
        self._deadline = None
        if self.transport.is_closing() or self._lingering:
            return
        if self._held is not None:
            self._give_up_hold(self._held)
            return
        if not self._in_message:  # opened and never spoke: nothing to answer
            self.transport.close()
            return
        self._refuse(Refusal(408, "request_timeout", f"the request was not received whole within "
                             f"{self.limits.read_timeout:g}s (api.read_timeout)"))
