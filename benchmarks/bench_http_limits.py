"""What the bounded HTTP framing (gamead_core/api/http_limits.py) costs per request, against uvicorn's plain
httptools protocol. On demand, never a test:

    .venv/bin/python benchmarks/bench_http_limits.py [--requests 20000] [--rounds 5]

Both protocols are driven in one process, on one uvloop loop, through an in-memory transport: a keep-alive
connection receives a typical ``POST /ads`` (9 header fields, a 330-byte body), a trivial ASGI app answers
202, and the next request follows. That isolates the protocol's own work (parsing, the head counters, the
read deadline) from the network and from gamead's handler. (``gamead serve`` also sends each answer's head and
body as one write, :mod:`gamead_core.api.turn_writes`: left out here, where there is no socket write to save; its
net effect is measured over real sockets by ``bench_submit_profile.py --http``.) Many short rounds alternate the two protocols so
machine noise hits both alike; the figures are medians of the per-round CPU microseconds per request and of
the paired per-round differences.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gamead_core.api.http_limits import BoundedHttpToolsProtocol, HttpLimits

BODY = (b'{"title":"Dragon Kingdom: Rise to Power","description":"Build your kingdom, train your dragons, and '
        b'conquer new territories!","genre":"Strategy","targetAudience":["18-34","Strategy Gamers"],'
        b'"visualElements":["Dragons","Castle","Battle Scenes"],"callToAction":"Download Now & Claim 1000 Free '
        b'Gems!","duration":30,"priority":2}')
REQUEST = (b"POST /ads HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n"
           b"Content-Type: application/json\r\nIdempotency-Key: order-12345\r\nAuthorization: Bearer tok\r\n"
           b"X-Request-Id: 0123456789abcdef\r\nConnection: keep-alive\r\nContent-Length: "
           + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


class MemoryTransport(asyncio.Transport):
    """Enough of a transport for uvicorn's protocol: counts the responses written."""

    def __init__(self) -> None:
        super().__init__()
        self.responses = 0
        self.closing = False

    def write(self, data: Any) -> None:
        self.responses += bytes(data).count(b"HTTP/1.1 202")

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def run(protocol_class: type[HttpToolsProtocol], requests: int) -> float:
    """CPU seconds per request for ``requests`` sequential keep-alive requests on one connection."""
    config = Config(app, lifespan="off", log_config=None, access_log=False)
    config.load()
    proto = protocol_class(config=config, server_state=ServerState(), app_state={},
                           _loop=asyncio.get_running_loop())
    transport = MemoryTransport()
    proto.connection_made(transport)
    started = time.process_time()
    for _ in range(requests):
        proto.data_received(REQUEST)
        while proto.cycle is None or not proto.cycle.response_complete:
            await asyncio.sleep(0)
    spent = time.process_time() - started
    proto.connection_lost(None)
    assert transport.responses == requests, transport.responses
    return spent / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    bounded = type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"limits": HttpLimits()})
    plain: list[float] = []
    limited: list[float] = []
    loop = uvloop.new_event_loop()
    loop.run_until_complete(run(HttpToolsProtocol, 2000))  # warm-up
    loop.run_until_complete(run(bounded, 2000))
    for _ in range(args.rounds):
        plain.append(loop.run_until_complete(run(HttpToolsProtocol, args.requests)))
        limited.append(loop.run_until_complete(run(bounded, args.requests)))
    loop.close()
    p, b = statistics.median(plain) * 1e6, statistics.median(limited) * 1e6
    diffs = sorted((y - x) * 1e6 for x, y in zip(plain, limited))
    q1, q3 = diffs[len(diffs) // 4], diffs[3 * len(diffs) // 4]
    d = statistics.median(diffs)
    print(f"{args.rounds} alternating rounds x {args.requests:,} keep-alive POST /ads requests, CPU per request:")
    print(f"  uvicorn httptools protocol         {p:6.2f} µs (median of rounds)")
    print(f"  gamead bounded httptools protocol  {b:6.2f} µs (median of rounds)")
    print(f"  paired difference                  {d:+6.2f} µs (median; quartiles {q1:+.2f} … {q3:+.2f} µs)")


if __name__ == "__main__":
    main()
