"""Read first, then close: no connection of ``gamead serve`` (or a worker's ``/metrics`` listener) is closed for
time, or by the graceful stop, with bytes that already came in it unread.

Why (attack34b F1, F2): when the event loop stood still (the process stopped by SIGSTOP, starved of CPU), the
requests that came meanwhile wait unread in their sockets, and the loop runs its due timers before it reads them
(uvloop: ``epoll_wait`` cut short by the stop returns without polling again, then libuv runs the timers). So the
keep-alive close (``api.keep_alive_timeout``, 5 s), the read deadline's "opened and never spoke" close
(``api.read_timeout``, 15 s) and, on SIGTERM, the graceful stop's close of "idle" connections closed connections
holding a whole ``POST /ads``: the kernel reset them (unread data), the client got ``ECONNRESET``, no answer, and
could not tell whether its ad was queued (it was not). The API counted its own stall against the client.

The rule, the one :mod:`gamead_core.queue.deadlines` applies to JetStream's acks ("a stalled loop is not a silent
client"): a close for time or for the stop is decided :data:`~gamead_core.queue.deadlines.GRACE` (50 ms) of
running loop later (:func:`~gamead_core.queue.deadlines.respite`), a loop turn that polls the sockets coming
first: whatever is in the socket is read by then, and the decision is made again on what was read.

* **keep-alive**: bytes read in the grace cancel the close (uvicorn's ``data_received`` cancels the timer, which
  now is the grace's), and the request is served;
* **read deadline** (the sweep of :mod:`gamead_core.api.http_sweep`): the connection is timed out only if its
  deadline is still the one that passed: a request completed in the grace cleared it (answered), a new one has its
  own; a request that is still incomplete is refused 408 as before (the deadline is not lifted, only read first);
  the bound of a held refusal (:mod:`gamead_core.api.refusal_order`) likewise;
* **graceful stop** (SIGTERM): the stop's decision for the connection is taken after the grace, on what was read:
  a request that came whole is answered (``Connection: close``), then the connection closes; an idle one closes;
  a body still coming is cut (``BoundedHttpToolsProtocol.shutdown``). uvicorn waits for every connection to close
  before the application's own stop, so the answer is a real one (202, or the API's 503 JSON).

A connection closed for time costs one more timer, 50 ms later; nothing is added to a request's path.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gamead_core.queue.deadlines import respite


class ReadsBeforeClosing:
    """Base beside :class:`~gamead_core.api.http_limits.BoundedHttpToolsProtocol` (before it in the bases) whose
    closes for time and for the stop are taken after a grace of running loop (module docstring)."""

    loop: asyncio.AbstractEventLoop
    transport: Any
    cycle: Any
    _deadline: float | None
    timeout_keep_alive_task: asyncio.TimerHandle | None
    _stop_decision: asyncio.TimerHandle | None = None  #: the graceful stop's decision, due after the grace

    def timeout_keep_alive_handler(self) -> None:
        """uvicorn's keep-alive timer ran out: the connection is closed after the grace, unless bytes come in it
        meanwhile (``data_received`` cancels ``timeout_keep_alive_task``, now the grace's timer)."""
        if not self.transport.is_closing():
            self.timeout_keep_alive_task = self.loop.call_at(respite(self.loop), self._idle_past_keep_alive)

    def _idle_past_keep_alive(self) -> None:
        self.timeout_keep_alive_task = None
        super().timeout_keep_alive_handler()  # type: ignore[misc]

    def read_timed_out(self) -> None:
        """The sweep found the read deadline passed: timed out after the grace if that deadline still stands."""
        self.loop.call_at(respite(self.loop), self._timed_out_if_still_due)

    def _timed_out_if_still_due(self) -> None:
        deadline = self._deadline  # None: the request came whole in the grace (or reading paused, or closed)
        if deadline is not None and self.loop.time() >= deadline and not self.transport.is_closing():
            super().read_timed_out()  # type: ignore[misc]

    def shutdown(self) -> None:
        """The server stops (SIGTERM): the connection's stop (the base's ``shutdown``) is decided after the grace,
        on what was read by then; called again meanwhile, nothing more."""
        if self._stop_decision is None and not self.transport.is_closing():
            self._stop_decision = self.loop.call_at(respite(self.loop), self._stop_after_reading)

    def _stop_after_reading(self) -> None:
        if not self.transport.is_closing():
            super().shutdown()  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._stop_decision is not None:
            self._stop_decision.cancel()
        super().connection_lost(exc)  # type: ignore[misc]
