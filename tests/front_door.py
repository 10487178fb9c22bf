"""A load balancer on loopback for the CLI's tests (outage46's leftover): a tiny asyncio HTTP server on a free port,
in front of one upstream (a real gamead API). While it has no upstream (:meth:`FrontDoor.cut`) it answers every
request itself, ``status`` with an HTML page (and ``retry_after``, if given), as nginx or an ELB with no healthy target does
(or, ``status`` 429, a limiter in front that refuses every request); otherwise it passes
each request to the upstream whole (one request per connection: ``Connection: close`` both ways) and its answer
back. Its own thread and event loop; :meth:`FrontDoor.stop` ends them."""

from __future__ import annotations

import asyncio
import math
import threading
import time

REASONS = {429: "Too Many Requests", 502: "Bad Gateway", 503: "Service Temporarily Unavailable",
           504: "Gateway Time-out"}


class FrontDoor:
    """``FrontDoor(upstream_port).start()``: ``url`` to give the CLI; ``answered`` counts the requests it answered
    itself, ``passed`` those it passed on. ``upstream_port`` None: it has no upstream at all and answers every
    request itself (before, such tests handed it a ``free_port()`` pick it never used)."""

    def __init__(self, upstream_port: int | None, *, status: int = 503, retry_after: int | None = None) -> None:
        self.upstream_port, self.status, self.retry_after = upstream_port, status, retry_after
        self.answered = self.passed = 0
        self.holding = 0  #: answers of the upstream held back now (:meth:`hold_next`)
        self._hold, self._released = False, asyncio.Event()
        self._until = 0.0  #: monotonic time until which it has no upstream (inf: a cut no request met yet)
        self._cut_for = 0.0  #: seconds of the cut under way, from the first request that met it
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="front-door", daemon=True)
        self.url = ""

    def start(self) -> FrontDoor:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the front door did not start")
        return self

    def cut(self, seconds: float) -> None:
        """No upstream from now until ``seconds`` after the first request that met it: every request answered
        ``status`` meanwhile. Timed from that request, not from the call, so a client slow to start (a command
        forked at load) or not scheduled meanwhile meets the whole cut, never none of it (race59)."""
        self._cut_for, self._until = seconds, math.inf

    def hold_next(self) -> None:
        """The next request passed on keeps its upstream's answer (``holding``) until :meth:`release`: an upstream
        slow to answer, its answer coming after the door's own to later requests (flakes50)."""
        self._hold = True

    def release(self) -> None:
        """The answers held back (:meth:`hold_next`) go, and none is held after."""
        self._loop.call_soon_threadsafe(self._released.set)

    @property
    def cutting(self) -> bool:
        return self.upstream_port is None or time.monotonic() < self._until

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = next((int(v) for k, _, v in (line.partition(":") for line in lines[1:])
                           if k.strip().lower() == "content-length"), 0)
            body = await reader.readexactly(length)
            if self.cutting:
                if self._until == math.inf:
                    self._until = time.monotonic() + self._cut_for
                self.answered += 1
                title = f"{self.status} {REASONS.get(self.status, 'Error')}"
                why = "no healthy upstream" if self.status != 429 else "slow down"
                page = f"<html><head><title>{title}</title></head><body>{why}</body></html>".encode()
                wait = f"Retry-After: {self.retry_after}\r\n" if self.retry_after is not None else ""
                writer.write(f"HTTP/1.1 {title}\r\nContent-Type: text/html\r\nContent-Length: {len(page)}\r\n"
                             f"{wait}Connection: close\r\n\r\n".encode() + page)
            else:
                self.passed += 1
                held, self._hold = self._hold, False
                kept = [line for line in lines[1:] if line and not line.lower().startswith("connection:")]
                assert self.upstream_port is not None  # else cutting
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                up_writer.write("\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1") + body)
                await up_writer.drain()
                answer = await up_reader.read()  # to the upstream's close: one request a connection
                if held:
                    self.holding += 1
                    await self._released.wait()
                    self.holding -= 1
                writer.write(answer)
                up_writer.close()
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
