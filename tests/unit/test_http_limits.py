"""The bounded HTTP/1.1 protocol driven in memory (no sockets): what it counts, and what it must not refuse.

The attack figures (10 x 50 MB heads, RSS) are measured against a real ``gamead serve`` in
``tests/integration/test_http_limits.py``; here, the edges: heads split into many reads, big bodies in the
same read as a small head, pipelined requests, and the JSON shape of a refusal.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from gamead_core.api.http_limits import HttpLimits, Refusal
from gamead_core.api.http_sweep import sweep_interval
from gamead_core.api.middleware import GateMiddleware
from gamead_core.api.protocol import bounded_protocol
from gamead_core.config import ApiSettings, GameadSettings

LIMITS = HttpLimits(max_request_line=256, max_header_bytes=1024, max_headers=10, read_timeout=60)


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = False
        self.eof = False
        self.paused = False  #: reading paused (pause_reading, not resumed since)

    def write(self, data: Any) -> None:
        self.out += data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed or self.eof

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True


async def echo_length(scope: dict[str, Any], receive: Any, send: Any) -> None:
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = str(size).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def echo_headers(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    body = json.dumps([[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]]).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def connected(app: Any, limits: HttpLimits = LIMITS) -> tuple[Any, Transport]:
    """gamead's protocol serving ``app`` under ``limits``, connected to an in-memory :class:`Transport` (call it on
    a running loop)."""
    config = Config(app, lifespan="off", log_config=None, access_log=False)
    config.load()
    proto = bounded_protocol(limits)(config=config, server_state=ServerState(), app_state={},
                                    _loop=asyncio.get_running_loop())
    transport = Transport()
    proto.connection_made(transport)
    return proto, transport


def drive(*reads: bytes, app: Any = echo_length) -> Transport:
    async def scenario() -> Transport:
        proto, transport = connected(app)
        for data in reads:
            if transport.is_closing():
                break
            proto.data_received(data)
            for _ in range(50):
                await asyncio.sleep(0)
        proto.connection_lost(None)
        return transport

    return asyncio.run(scenario())


def statuses(transport: Transport) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", bytes(transport.out))]


def request(target: bytes = b"/", headers: int = 2, body: bytes = b"") -> bytes:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(headers - 2))  # + Host + Content-Length
    return b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n" + fields + b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_a_head_dribbled_one_byte_at_a_time_is_served() -> None:
    data = request(headers=9, body=b"hello")
    out = drive(*(data[i : i + 1] for i in range(len(data))))
    assert statuses(out) == [200] and out.out.endswith(b"5")


def test_a_big_body_in_the_same_read_as_a_small_head_is_not_a_big_head() -> None:
    out = drive(request(body=b"x" * 100_000))
    assert statuses(out) == [200] and out.out.endswith(b"100000")


def test_pipelined_requests_are_all_answered() -> None:
    out = drive(request(body=b"a") + request(body=b"bb") + request(body=b"ccc"))
    assert statuses(out) == [200, 200, 200]


def test_limits_are_enforced_whether_the_head_arrives_whole_or_in_pieces() -> None:
    big_head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n"
    for reads in ([big_head], [big_head[i : i + 100] for i in range(0, len(big_head), 100)]):
        out = drive(*reads)
        assert statuses(out) == [431] and out.eof  # answered, then the write side shut (lingering close)
    assert statuses(drive(request(headers=11))) == [431]
    assert statuses(drive(request(headers=10))) == [200]
    assert statuses(drive(request(target=b"/" + b"a" * 300))) == [414]
    line = b"GET /" + b"a" * 2000  # a request line that never ends: refused as too long once over the head limit
    assert statuses(drive(line[:1000], line[1000:])) == [414]


def test_a_transfer_coding_but_chunked_is_501_after_the_answer_before_it_pipelined_or_not() -> None:
    """attack27 F8 (the integration test has the first request's case): the second request of a connection is
    answered 501, not closed without a word, and nothing of its body reaches the app. attack27b F2: also when it
    comes in the same read as the first (pipelined), the first's answer then the 501: the protocol frames
    ``br, chunked`` as chunked and the gate middleware refuses it, an answer in request order like any other."""
    coded = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    gate = GateMiddleware(echo_length, settings=GameadSettings())
    for reads in ((request(body=b"a"), coded), (request(body=b"a") + coded,)):  # the second once the first is answered
        out = drive(*reads, app=gate)
        assert statuses(out) == [200, 501] and b'"not_implemented"' in out.out and b"'br'" in out.out, out.out
        assert b"connection: close" in out.out.partition(b"HTTP/1.1 501")[2].lower()


def test_a_refusal_is_the_api_error_shape_and_closes() -> None:
    raw = Refusal(431, "headers_too_large", "too big").encode([(b"date", b"today")])
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\ndate: today\r\n")
    assert b"connection: close" in head and b"content-type: application/json" in head
    assert json.loads(body) == {"error": {"code": "headers_too_large", "message": "too big", "details": None}}


def test_limits_come_from_the_api_settings() -> None:
    limits = HttpLimits.from_settings(ApiSettings(max_header_bytes=4096, max_headers=20, read_timeout=3,
                                                  max_request_line_bytes=1024))
    assert limits == HttpLimits(max_request_line=1024, max_header_bytes=4096, max_headers=20, read_timeout=3)
    assert sweep_interval(3) == 0.75 and sweep_interval(60) == 1.0


def chunked(target: bytes = b"/ads") -> bytes:
    return b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def refusal(transport: Transport) -> tuple[int, str, str]:
    body = json.loads(bytes(transport.out).partition(b"\r\n\r\n")[2])["error"]
    return statuses(transport)[0], body["code"], body["message"]


def test_a_chunk_size_over_the_body_cap_is_413_at_once_not_a_408_later() -> None:
    # an attacker's FFFFFFFFFFFFFFFF chunk and a stall got 408 after 15 s; a 0x100000 one got 413 once sent
    status, code, message = refusal(drive(chunked() + b"FFFFFFFFFFFFFFFF\r\nab"))
    assert (status, code) == (413, "payload_too_large") and "(api.max_body_bytes)" in message
    for reads in ([chunked(), b"FFFF", b"FFFF\r", b"\n"], [chunked() + b"5\r\nhello\r\n10001;a=b\r\n"]):
        assert refusal(drive(*reads))[:2] == (413, "payload_too_large")  # split lines, a later chunk, extensions
    assert statuses(drive(chunked() + b"10000\r\nab")) == []  # at the cap: waits for its bytes
    assert statuses(drive(chunked(b"/ads/batch") + b"100000\r\nab")) == []  # the batch route's cap is 2 MiB
    assert refusal(drive(chunked(b"/ads/batch?x=1") + b"200001\r\n"))[2].endswith("(api.batch_max_body_bytes)")


def test_a_chunk_size_line_too_long_or_not_hex_is_400_at_once() -> None:
    for reads in ([chunked() + b"0" * 1100], [chunked(), b"0" * 600, b"0" * 600],
                  [chunked() + b"5;" + b"e" * 1100 + b"\r\nhe"]):
        status, code, message = refusal(drive(*reads))
        assert (status, code) == (400, "bad_request") and "chunk size line" in message
    assert refusal(drive(chunked() + b"zz\r\n"))[:2] == (400, "bad_request")
    assert refusal(drive(chunked() + b"1" + b"F" * 16 + b"\r\n"))[:2] == (400, "bad_request")  # overflow


def test_a_long_trailer_is_said_as_a_trailer_and_bounded_however_it_is_split() -> None:
    """attack47 F9: a 30 KB trailer field after the last chunk was ``a chunk size line is longer than 1,024 bytes``
    in one read, and went through whole when split across reads (httptools joins a field's pieces)."""
    trailer = b"X-Trailer: " + b"a" * 30_000 + b"\r\n\r\n"
    last = chunked() + b"2\r\n{}\r\n0\r\n"
    for reads in ([last + trailer], [last, trailer[:600], trailer[600:1200], trailer[1200:]],
                  [last + trailer[:20], trailer[20:]]):
        assert refusal(drive(*reads)) == (400, "bad_request", "the trailer fields after the last chunk are longer "
                                          "than 1,024 bytes (the API reads none: send the body without them)")
    short = b"X-Trailer: " + b"a" * 900 + b"\r\n\r\n"  # under the bound, split: served
    assert statuses(drive(last, short[:500], short[500:])) == [200]


def test_llhttps_words_are_said_as_what_the_client_sent() -> None:
    """attack47 F9: ``CONNECT 127.0.0.1:22`` was ``the request is not valid HTTP/1.1: User callback error``, an
    HTTP/2 preface ``… Pause on PRI/Upgrade``."""
    assert refusal(drive(b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n")) == (
        400, "bad_request", "the request target '127.0.0.1:22' is not a path (such as /ads) nor an absolute URL: "
        "the API serves paths, and is no proxy to CONNECT through")
    assert refusal(drive(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) == (
        400, "bad_request", "the request is not valid HTTP/1.1: it began with HTTP/2's connection preface "
        "(PRI * HTTP/2.0): the API speaks HTTP/1.1 only")


def test_valid_chunked_bodies_are_served_however_they_are_split() -> None:
    data = chunked() + b"5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"
    assert statuses(drive(data)) == [200]
    out = drive(*(data[i : i + 1] for i in range(len(data))))
    assert statuses(out) == [200] and out.out.endswith(b"8")
    assert statuses(drive(data + request(body=b"a") + data)) == [200, 200, 200]  # pipelined
    assert statuses(drive(chunked() + b"4\r\n\n\n\n\n\r\n0\r\n\r\n")) == [200]  # line feeds in the data


def test_header_values_reach_the_app_without_surrounding_whitespace() -> None:
    """RFC 9110 §5.5: whitespace around a field value is not part of it. llhttp drops the leading and keeps the
    trailing; an attack drill (session 23) sent ``Idempotency-Key: repro `` after ``repro`` and got a second ad.
    Every header reader now gets the value as meant, split across reads or not."""
    data = (b"POST / HTTP/1.1\r\nHost: x\r\nIdempotency-Key:   repro \t \r\nX-Request-Id: r-1\t\r\n"
            b"X-Inner: a  b \r\nContent-Length: 0\r\n\r\n")
    for reads in ([data], [data[i : i + 7] for i in range(0, len(data), 7)]):
        out = drive(*reads, app=echo_headers)
        assert statuses(out) == [200]
        seen = dict(json.loads(bytes(out.out).split(b"\r\n\r\n", 1)[1]))
        assert (seen["idempotency-key"], seen["x-request-id"], seen["x-inner"]) == ("repro", "r-1", "a  b")


def test_a_refusal_behind_requests_still_running_waits_for_their_answers_and_reads_nothing_meanwhile() -> None:
    """A refusal decided while earlier pipelined requests are still being served is written after their answers
    (it was written at once and the connection closed: their answers were lost). Meanwhile reading stays
    paused, though the running requests wait in ``receive`` (uvicorn resumes reading there), a read that comes
    all the same is dropped unparsed, and nothing after the refused request runs."""
    async def scenario() -> tuple[Transport, list[str], list[bool]]:
        release = asyncio.Event()
        started: list[str] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            started.append(scope["path"])
            while (await receive()).get("more_body"):
                pass
            if scope["path"] == "/slow":
                await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})

        proto, transport = connected(app)

        async def settle() -> None:
            for _ in range(50):
                await asyncio.sleep(0)

        held: list[bool] = []
        proto.data_received(request(b"/slow") + request(b"/second") + request(headers=11))  # the third: 431
        await settle()
        held += [statuses(transport) == [], transport.paused, not transport.eof]
        proto.data_received(request(b"/after"))  # a read already under way: dropped
        await settle()
        held += [transport.paused]
        release.set()
        await settle()
        proto.connection_lost(None)
        return transport, started, held

    transport, started, held = asyncio.run(scenario())
    assert held == [True, True, True, True]  # nothing answered while /slow runs, reading paused throughout
    assert statuses(transport) == [200, 200, 431] and transport.eof, bytes(transport.out)
    assert b'"too_many_headers"' in transport.out and started == ["/slow", "/second"]
