"""Answer after a half-close: a client that sends its request and then shuts its side down (``shutdown(SHUT_WR)``,
as ``nc -N`` and some proxies and scripts do) still gets its answer; the connection closes once that answer is
written. RFC 9112 §9.6: a client's half-close ends what it sends, not what it may receive.

Why (attack38b F5): uvicorn's protocol returns nothing from ``eof_received``, so asyncio and uvloop closed the
transport at the client's EOF; a route that awaited NATS (``POST /ads``, ``GET /ads``, ``/v1/stats``) answered into
a closed transport: 0 bytes back, and a ``POST /ads`` was queued all the same, its id never told (the same POST
resent with its key answered ``"duplicate": true``). Only routes answered within the EOF's own loop turn
(``/healthz``) got through.
"""

from __future__ import annotations

from typing import Any


class AnswersAfterHalfClose:
    """Base beside :class:`~gamead_core.api.http_limits.BoundedHttpToolsProtocol` (before it in the bases): at the
    client's EOF with a whole request not yet answered (the newest one, pipelined ones before it too), the transport
    stays open for writing (``eof_received`` returns True, asyncio's protocol rule) and that newest request's answer
    is the connection's last (``keep_alive`` off: uvicorn closes after it). A request still coming at the EOF can
    never be whole: the connection closes at once, as before."""

    cycle: Any
    _in_message: bool

    def eof_received(self) -> bool | None:
        super().eof_received()  # type: ignore[misc]
        cycle = self.cycle
        if cycle is None or cycle.response_complete or self._in_message:
            return None  # nothing left to answer, or a request cut short: the transport closes
        cycle.keep_alive = False
        return True
