"""The API's bound on its open connections (``api.max_connections``; unset: the open-files limit less a reserve,
:func:`gamead_core.fd_limit.derived_max_connections`).

Why: every connection holds a file descriptor until its client closes it or ``api.read_timeout`` /
``api.keep_alive_timeout`` pass; 400 idle sockets against a limit of 256 left the API unable to accept anything
for as long as a client kept them, with nothing in its log (attack29b F2). The worker's ``/metrics`` listener had
the idea first (:mod:`gamead_core.telemetry.metrics_listener`: waiting connections closed oldest first so that a
client holding connections cannot keep a request out); here it is kept in O(1) per connection, for tens of
thousands of them:

* a connection *waits* while it has not sent a complete request: none yet, a head or a body still arriving, or idle
  after its answer (keep-alive); from the end of a request's last byte until its answer is complete it is *busy*;
* past the bound, a new connection makes room by closing the connection waiting longest (since its opening, its
  last answer or the first byte of its request), never a busy one;
* if every other connection is busy, the new one is answered ``503 too_many_connections`` (JSON, ``Connection:
  close``, a lingering close of at most ``LINGER_SECONDS``). A refused connection is never closed for room nor
  counted against the bound while it lingers: before (review29 F2), the next new connection closed it (its client
  read an empty reply instead of the 503) and was admitted in its place, the bound exceeded by one, so in a burst
  only the first and last client got an answer;
* a connection with a request still unanswered is busy even once the first byte of the next, pipelined, request
  has come (review29 F1: it was "waiting" from that byte, so a new connection closed it and the answer of the
  request in flight -- a POST /ads's 202 -- was lost);
* each kind of event is one WARNING line at most every few seconds (:class:`gamead_core.log_throttle.Throttle`),
  saying the bound, the connections open and how many such events the throttle left out.

When accept() itself fails (the open-files limit, not the bound, was reached: :mod:`gamead_core.api.acceptor`),
:func:`make_room` frees the waiting connection longest idle as well.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from gamead_core.api.http_limits import BoundedHttpToolsProtocol
from gamead_core.api.refusal_order import Refusal
from gamead_core import log_throttle
from gamead_core.log_throttle import Throttle
from gamead_core.telemetry.conn_metrics import CONNECTIONS_CLOSED_FOR_ROOM, CONNECTIONS_REFUSED, count, opened

log = logging.getLogger(__name__)

#: one line per kind (closed to make room, refused, accept failed) every this many seconds
LOG_EVERY = 5.0
_throttle = Throttle(every=LOG_EVERY)


class Waiting:
    """The connections of one server waiting for a request, the one waiting longest first (insertion order of an
    ``OrderedDict``: every operation O(1))."""

    def __init__(self) -> None:
        self._conns: OrderedDict[Any, None] = OrderedDict()
        #: refused connections still open (lingering): outside the bound, never closed for room
        self.refused: set[Any] = set()

    def waits(self, conn: Any) -> None:
        """``conn`` waits from now: it goes last."""
        self._conns[conn] = None
        self._conns.move_to_end(conn)

    def goes_first(self, conn: Any) -> None:
        """``conn`` (taken out by :meth:`longest`, not closed) waits longest again."""
        self._conns[conn] = None
        self._conns.move_to_end(conn, last=False)

    def busy(self, conn: Any) -> None:
        """``conn`` is serving a request, or gone: never closed for room."""
        self._conns.pop(conn, None)

    def longest(self) -> Any | None:
        """Take out the connection waiting longest, or None if none waits."""
        while self._conns:
            conn, _ = self._conns.popitem(last=False)
            if not conn.transport.is_closing():
                return conn
        return None


def waiting_of(server_state: Any) -> Waiting:
    """The :class:`Waiting` of one uvicorn server (kept on its ``server_state``, as the read-deadline sweep is)."""
    waiting = getattr(server_state, "_gamead_waiting", None)
    if waiting is None:
        waiting = server_state._gamead_waiting = Waiting()
    return waiting


def say(kind: str, now: float, line: str, *args: Any) -> None:
    """Log WARNING ``line % args`` unless a line of ``kind`` was logged within :data:`LOG_EVERY` seconds of ``now``
    (monotonic s); the next one logged says how many were left out."""
    log_throttle.say(_throttle, kind, now, log, logging.WARNING, line, *args, extra={"event": kind})


def make_room(server_state: Any, but: Any = None) -> Any | None:
    """Close the connection of ``server_state`` waiting longest (not ``but``) and take it out of the server's
    connections at once (its ``connection_lost`` comes a loop turn later); returns it, or None if every connection
    is busy (then ``but``, if it was taken out, is put back first)."""
    waiting = waiting_of(server_state)
    conn = waiting.longest()
    if conn is but and conn is not None:
        conn = waiting.longest()
        waiting.goes_first(but)
    if conn is None:
        return None
    conn.transport.close()
    server_state.connections.discard(conn)
    count(CONNECTIONS_CLOSED_FOR_ROOM)
    return conn


class CappedConnections(BoundedHttpToolsProtocol):
    """The bounded protocol keeping at most ``limits.max_connections`` connections open (module docstring)."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        opened(1)
        self._idle_since = self.loop.time()
        self._waiting = waiting_of(self.server_state)
        self._waiting.waits(self)
        cap = self.limits.max_connections
        if len(self.connections) - len(self._waiting.refused) <= cap:
            return
        closed = make_room(self.server_state, but=self)
        if closed is not None:
            say("closed_for_room", self._idle_since, "api.max_connections (%d) reached: closed the connection "
                "waiting longest for a request (%.1f s) to make room for a new one", cap,
                self._idle_since - closed._idle_since)
            return
        say("too_many_connections", self._idle_since, "api.max_connections (%d) reached with every other connection "
            "serving a request: a new connection was answered 503 too_many_connections", cap)
        self._answer(Refusal(503, "too_many_connections", f"the API has {cap} connections open, each serving a "
                             f"request (api.max_connections): try again shortly"))
        count(CONNECTIONS_REFUSED)
        self._waiting.busy(self)  # lingers with its answer: not closed for room (a client would read no 503) ...
        self._waiting.refused.add(self)  # ... nor counted against the bound (then no newcomer is let in for it)

    def connection_lost(self, exc: Exception | None) -> None:
        self._waiting.busy(self)
        self._waiting.refused.discard(self)
        opened(-1)
        super().connection_lost(exc)

    def _serving(self) -> bool:
        """Whether a whole request of this connection is unanswered (its handler acts on it): busy then, else
        waiting (none sent, a head or a body still arriving, answered early, or idle after its answer). Asked at
        each event of a request, pipelined ones included (review29b F2, F3: a trickling POST pipelined behind an
        answered GET counted busy; an early answer whose body then came in too)."""
        running = self._running
        return running is not None and not running.response_complete and not running.more_body

    def _update(self) -> None:
        if self._serving():
            self._waiting.busy(self)
        elif not self.transport.is_closing():
            self._idle_since = self.loop.time()
            self._waiting.waits(self)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._update()

    def on_message_complete(self) -> None:
        super().on_message_complete()  # a whole request: in flight until answered (attack29c F1: not before)
        self._update()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start the next pipelined request
        self._update()
