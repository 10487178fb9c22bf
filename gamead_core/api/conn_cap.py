"""The API's bound on its open connections (``api.max_connections``; unset: the open-files limit less a reserve,
:func:`gamead_core.fd_limit.derived_max_connections`).

Why: every connection holds a file descriptor until its client closes it or ``api.read_timeout`` /
``api.keep_alive_timeout`` pass; 400 idle sockets against a limit of 256 left the API unable to accept anything
for as long as a client kept them, with nothing in its log (attack29b F2). The worker's ``/metrics`` listener had
the idea first (:mod:`gamead_core.telemetry.metrics_listener`: waiting connections closed oldest first so that a
client holding connections cannot keep a request out); here it is kept in O(1) per connection, for tens of
thousands of them:

* a connection *waits* while it has not sent a complete request: none yet, a head or a body still arriving, or idle
  after its answer (keep-alive); from the end of a request's last byte until its answer is complete it is *busy*,
  and still while its answer's bytes wait in the transport for its client to read them (*writing*), unless the
  client acknowledged none since the last sweep (*stalled*, :mod:`gamead_core.api.write_watch`): then it waits
  again, from then on, until its bytes move or ``api.write_timeout`` aborts it (attack34a F1);
* past the bound, a new connection makes room by cutting the connection waiting longest (since its opening, its
  last answer, the first byte of its request or its answer's stall), never a busy one. It is aborted, with a reset
  when bytes are unsent (:meth:`~gamead_core.api.refusal_order.InOrderRefusals._cut`), so its descriptor and
  socket buffers are freed at once and it leaves the count then. Before (attack34a F1) it was closed: a close
  waits until the transport has sent everything, so a client that did not read its answer kept the descriptor and
  ~2.8 MB of kernel buffer for ever, out of the count; 64 of them at an open-files limit of 80 froze ``/healthz``.
  Every other connection is counted from its transport's making until its ``connection_lost`` (its descriptor
  closed), a close waiting for its buffer included; only a refused one lingering (below) is not;
* if every other connection is busy, the new one is answered ``503 too_many_connections`` (JSON, ``Connection:
  close``, a lingering close of at most ``LINGER_SECONDS``). A refused connection is never closed for room nor
  counted against the bound while it lingers: before (review29 F2), the next new connection closed it (its client
  read an empty reply instead of the 503) and was admitted in its place, the bound exceeded by one, so in a burst
  only the first and last client got an answer;
* a connection whose client's bytes came but wait unread in the kernel spoke, whatever it was before: it is passed
  over (:func:`speaks`) until the API reads it, then judged on what came (conn55: a loaded API makes the
  connections it accepts before it reads what came on older ones, so one whose whole POST sat unread was cut for
  a newcomer, its client reading nothing); one whose answer stalled is cut all the same (it reads nothing), and
  with :data:`PASSED_OVER_AT_MOST` speakers passed over the newcomer is refused (an answer), none cut;
* a connection with a request still unanswered is busy even once the first byte of the next, pipelined, request
  has come (review29 F1: it was "waiting" from that byte, so a new connection closed it and the answer of the
  request in flight -- a POST /ads's 202 -- was lost);
* each kind of event is one WARNING line at most every few seconds (:class:`gamead_core.log_throttle.Throttle`),
  saying the bound, the connections open, what holds them when none could be closed (:class:`Holding`: serving a
  request, writing an answer not yet read, reading a request or idle) and how many such events the throttle left
  out.

When accept() itself fails (the open-files limit, not the bound, was reached: :mod:`gamead_core.api.acceptor`),
:func:`make_room` frees the waiting connection longest idle as well.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from gamead_core.api.http_limits import BoundedHttpToolsProtocol
from gamead_core.api.refusal_order import Refusal
from gamead_core.api.write_watch import buffered, kernel_unread
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
        #: each waiting connection, with its reads (``_reads``) when :meth:`longest` last passed it over in this wait
        self._conns: OrderedDict[Any, int | None] = OrderedDict()
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
        """Take out the connection waiting longest, or None if none waits (a closing one counts only while it holds
        bytes of an answer: a close waits for them). A speaker the API has not read yet (:func:`speaks`) is passed
        over and keeps its place; after :data:`PASSED_OVER_AT_MOST` of them, None (the newcomer is refused)."""
        passed: list[tuple[Any, int]] = []
        try:
            while self._conns:
                conn, mark = self._conns.popitem(last=False)
                if conn.transport.is_closing() and not buffered(conn.transport):
                    continue
                if not spoke(conn, mark):
                    return conn
                passed.append((conn, conn._reads))
                if len(passed) >= PASSED_OVER_AT_MOST:
                    return None
            return None
        finally:
            for conn, reads in reversed(passed):  # in their places, each marked with its reads
                self._conns[conn] = reads
                self._conns.move_to_end(conn, last=False)


#: speakers :meth:`Waiting.longest` passes over for one newcomer at most (an ioctl each): then the newcomer is
#: refused 503, an answer too, rather than a speaker cut or every waiting connection looked at
PASSED_OVER_AT_MOST = 16


def speaks(unread: int, stalled: bool, mark: int | None, reads: int) -> bool:
    """Whether a waiting connection is a client that spoke and that the API has not read yet, so not to be cut for
    room (conn55: a loaded API makes a newcomer's connection before it reads a request already whole in the kernel;
    cut, its client read nothing though it had spoken): ``unread`` bytes of its client wait in the kernel (0 while
    the API keeps from reading it), its answer is not ``stalled`` (a client that reads nothing of its answer is cut
    as before, whatever it sent after) and the API has not read it since it was last passed over in this wait
    (``mark``: its ``reads`` then, None if never; final54: a client sending a byte of its request now and then is
    passed over until the API's next read of it, not at every newcomer). Pure."""
    return unread > 0 and not stalled and (mark is None or mark == reads)


def spoke(conn: Any, mark: int | None) -> bool:
    """:func:`speaks` of a waiting connection ``conn`` (a
    :class:`~gamead_core.api.http_limits.BoundedHttpToolsProtocol`) as it is now: its client's bytes unread in the
    kernel (:func:`unread`), its answer stalled or not, ``mark`` its reads when last passed over in this wait (None if
    never). The API's rule and the metrics listener's. An ioctl; never raises."""
    watch = conn._watch
    return speaks(unread(conn.transport), watch is not None and watch.stalled > 0, mark, conn._reads)


def unread(transport: Any) -> int:
    """Bytes a client sent that wait unread in the kernel (``FIONREAD``) while ``transport`` reads: read on its
    loop's next turn; 0 when reading is paused, the transport closing or the socket gone. Never raises."""
    sock = transport.get_extra_info("socket")
    if sock is None or transport.is_closing() or not transport.is_reading():
        return 0
    try:
        return kernel_unread(sock.fileno())
    except (OSError, ValueError):
        return 0


def serving(conn: Any) -> bool:
    """Whether a whole request of ``conn`` is unanswered (its handler acts on it): busy then, else waiting (none
    sent, a head or a body still arriving, answered early, or idle after its answer). Asked at each event of a
    request, pipelined ones included (review29b F2, F3: a trickling POST pipelined behind an answered GET counted
    busy; an early answer whose body then came in too)."""
    running = conn._running
    return running is not None and not running.response_complete and not running.more_body


class Holding:
    """What holds the connections of ``server_state``, for a log line (formatted only if logged: O(connections))."""

    def __init__(self, server_state: Any) -> None:
        self.server_state = server_state

    def counts(self) -> tuple[int, int, int]:
        """``(serving, writing, other)``: connections serving a request, writing an answer its client has not read
        yet, and reading a request or idle."""
        busy = writing = 0
        conns = list(self.server_state.connections)
        for conn in conns:
            if buffered(conn.transport):
                writing += 1
            elif serving(conn):
                busy += 1
        return busy, writing, len(conns) - busy - writing

    def __str__(self) -> str:
        busy, writing, other = self.counts()
        conn = next(iter(self.server_state.connections), None)
        timeout = f"{conn.limits.write_timeout:g}s" if conn is not None else "a while"
        return (f"{busy} serving a request, {writing} writing an answer its client has not read (aborted after "
                f"{timeout} without progress: api.write_timeout), {other} reading a request or idle")


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
    """Cut the connection of ``server_state`` waiting longest (not ``but``; aborted, its descriptor closed now) and
    take it out of the server's connections at once (its ``connection_lost`` comes a loop turn later); returns it,
    or None if every connection is busy (then ``but``, if it was taken out, is put back first)."""
    waiting = waiting_of(server_state)
    conn = waiting.longest()
    if conn is but and conn is not None:
        conn = waiting.longest()
        waiting.goes_first(but)
    if conn is None:
        return None
    conn._cut()  # descriptor and socket buffers freed now, not once a client that does not read has read
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
        say("too_many_connections", self._idle_since, "api.max_connections (%d) reached with no other connection "
            "waiting for a request (%s): a new connection was answered 503 too_many_connections", cap,
            Holding(self.server_state))
        self._answer(Refusal(503, "too_many_connections", f"the API has {cap} connections open, none of them "
                             f"waiting for a request (api.max_connections): try again shortly"))
        count(CONNECTIONS_REFUSED)
        self._waiting.busy(self)  # lingers with its answer: not closed for room (a client would read no 503) ...
        self._waiting.refused.add(self)  # ... nor counted against the bound (then no newcomer is let in for it)

    def connection_lost(self, exc: Exception | None) -> None:
        self._waiting.busy(self)
        self._waiting.refused.discard(self)
        opened(-1)
        super().connection_lost(exc)

    def _update(self) -> None:
        watch = self._watch
        if watch is not None and watch.stalled:  # its client reads nothing: may be cut for room, from the stall on
            if self not in self._waiting.refused:
                self._idle_since = self.loop.time()
                self._waiting.waits(self)
        elif serving(self) or self.writing():
            self._waiting.busy(self)
        elif not self.transport.is_closing():
            self._idle_since = self.loop.time()
            self._waiting.waits(self)

    def _writing_changed(self) -> None:
        self._update()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._update()

    def on_message_complete(self) -> None:
        super().on_message_complete()  # a whole request: in flight until answered (attack29c F1: not before)
        self._update()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start the next pipelined request
        self._update()
