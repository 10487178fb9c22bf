"""The API's accept loop: connections taken from the listening socket here, in Python, not by uvloop's server.

Why: when accept() fails for want of a file descriptor (``EMFILE``: the process's open-files limit; ``ENFILE``:
the system's), libuv accepts and at once closes every pending connection (its "EMFILE trick") and tells nobody:
clients got resets and empty replies and the API's log said nothing for as long as a client held its sockets
(attack29b F2); were the trick unavailable, uvloop would close the listener for good. Here such a failure:

* closes the :data:`ROOM_PER_FAILURE` connections waiting longest for a request
  (:func:`gamead_core.api.conn_cap.make_room`), and accepts again in the next loop turn, their descriptors free;
* with none to close (none waits for a request: the line says how many serve one, write an answer not yet read,
  or read a request or idle), stops accepting for :data:`PAUSE_SECONDS` (a level-triggered listener that cannot
  accept would otherwise spin a core): meanwhile new connections wait in the kernel's listen backlog, not reset;
* logs one WARNING line every few seconds at most, with the limit and the connections open.

A network error of the new connection that Linux's accept(2) passes on as accept's own (``EPROTO``,
``ENETUNREACH``, ``EPERM`` from a firewall..., :data:`RETRY_AT_ONCE`: "treat them like EAGAIN by retrying") is no
failure of the listener: the next connection is accepted at once, as libuv did. Before (review29 F6) each paused
accepting for :data:`PAUSE_SECONDS`, so a peer able to provoke them throttled the listener. Any other error
(unknown ones too) pauses (:func:`pauses`). Every failure is counted (``gamead_accept_failures_total{reason}``).

Each accepted socket becomes a transport with ``loop.connect_accepted_socket`` (uvloop's, as fast as its server's
own once made); at most :data:`ACCEPTS_PER_TURN` are taken per loop turn, and at most as many wait for their
transport, so requests in flight keep their turn and ``api.max_connections`` (counted once a transport is made)
is not overrun by sockets accepted meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from email.utils import formatdate
from typing import Any

import uvicorn

from gamead_core import clock, collector
from gamead_core.api.conn_cap import Holding, make_room, say
from gamead_core.first_stop import PHASE, after_stop, after_the_first, take
from gamead_core.stop_bound import API_BOUND, arm
from gamead_core.telemetry.conn_metrics import OUT_OF, RETRY_AT_ONCE, accept_failed

log = logging.getLogger(__name__)

#: seconds accepting stops after accept() failed for want of a descriptor
PAUSE_SECONDS = 0.1
#: connections accepted in one loop turn at most, and accepted sockets whose transport is still being made
ACCEPTS_PER_TURN = 16
#: waiting connections closed at most per accept() failed for want of a descriptor
ROOM_PER_FAILURE = 16
#: seconds past each whole second of the service clock the server's tick wakes to rewrite the Date header
TICK_PAST = 0.005


def till_next_second(now: float) -> float:
    """Seconds from ``now`` (service clock, Unix s) to :data:`TICK_PAST` past its next whole second: when the
    server's next tick is due (:meth:`AcceptingServer.main_loop`). Between :data:`TICK_PAST` and 1 s +
    :data:`TICK_PAST`. Pure."""
    return int(now) + 1 - now + TICK_PAST if now >= 0 else TICK_PAST


def pauses(code: int | None) -> bool:
    """Whether an accept() failure with errno ``code`` stops accepting for a while (out of descriptors or memory,
    or an error unknown here: True) rather than going on with the next connection at once (:data:`RETRY_AT_ONCE`:
    False)."""
    return code not in RETRY_AT_ONCE


class Acceptor:
    """Accepts connections on a listening ``sock`` into protocols made by ``factory``, for uvicorn's
    ``Server.servers`` (``close()``, ``wait_closed()``). ``server_state``: uvicorn's, whose ``connections`` are
    counted and closed for room when accept() fails for want of a descriptor."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, factory: Callable[[], Any],
                 server_state: Any) -> None:
        self.loop, self.sock, self.factory, self.server_state = loop, sock, factory, server_state
        self._starting: set[asyncio.Task[Any]] = set()
        self._paused: asyncio.TimerHandle | None = None
        self._closed = False
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        # the sockets accepted but not yet connections hold descriptors too: at most ACCEPTS_PER_TURN of them
        for _ in range(ACCEPTS_PER_TURN - len(self._starting)):
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                accept_failed(exc.errno)
                if not pauses(exc.errno):
                    continue  # the new connection's own error: the next one, at once
                self._out_of_descriptors(exc)
                return
            self._start(conn)

    def _start(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as uvloop's own server sets it
        except OSError:
            pass
        task = self.loop.create_task(self.loop.connect_accepted_socket(self.factory, conn))
        self._starting.add(task)
        task.add_done_callback(self._started)

    def _started(self, task: asyncio.Task[Any]) -> None:
        self._starting.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a client gone before its transport was made is no error (the transport
            # closed its socket; the socket object, referenced by nothing else, goes with it)

    def _out_of_descriptors(self, exc: OSError) -> None:
        """accept() failed (``exc``): close up to :data:`ROOM_PER_FAILURE` waiting connections and accept again in
        the next loop turn (their descriptors are free by then), or, with none to close, in :data:`PAUSE_SECONDS`;
        say so (throttled)."""
        now = self.loop.time()
        open_now = len(self.server_state.connections) + len(self._starting)
        closed = 0
        if exc.errno in OUT_OF:
            while closed < ROOM_PER_FAILURE and make_room(self.server_state) is not None:
                closed += 1
            limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            if closed:
                say("accept_out_of_files", now, "accept failed: %s (open-files limit %d, %d connections open): closed "
                    "the %d connection(s) waiting longest for a request to make room", exc.strerror or exc, limit,
                    open_now, closed)
            else:  # what holds them, counted only if the line is logged
                say("accept_out_of_files", now, "accept failed: %s (open-files limit %d, %d connections open): none "
                    "waits for a request (%s); new ones wait in the listen backlog (retried every %gs)",
                    exc.strerror or exc, limit, open_now, Holding(self.server_state), PAUSE_SECONDS)
        else:
            say("accept_failed", now, "accept failed: %s (%d connections open); trying again in %gs",
                exc.strerror or exc, open_now, PAUSE_SECONDS)
        self.loop.remove_reader(self.sock.fileno())
        self._paused = self.loop.call_later(0 if closed else PAUSE_SECONDS, self._resume)

    def _resume(self) -> None:
        self._paused = None
        if not self._closed:
            self.loop.add_reader(self.sock.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting (the socket is closed by its owner)."""
        if self._closed:
            return
        self._closed = True
        if self._paused is not None:
            self._paused.cancel()
        else:
            self.loop.remove_reader(self.sock.fileno())

    async def wait_closed(self) -> None:
        """Wait for the transports still being made."""
        if self._starting:
            await asyncio.gather(*self._starting, return_exceptions=True)


class AcceptingServer(uvicorn.Server):
    """uvicorn's server whose listening sockets are served by an :class:`Acceptor` each (module docstring), and
    whose responses' ``Date`` header (RFC 9110 §6.6.1: the origin server's clock) is nats-server's time
    (:mod:`gamead_core.clock`), not the host's: uvicorn's own (``date_header``, off in ``gamead serve``) reads the
    host clock. Written into the headers every response starts with at a tick :data:`TICK_PAST` s past each second
    of that clock: no cost per request. The CLI reads it to resolve relative times on the service's clock.

    Its main loop sleeps until that tick or a stop (``should_exit`` set: a signal, ``stop_serving``), not uvicorn's
    0.1 s ticks (idle55: 10 of an idle API's timer wake-ups a second, of ~35)."""

    _second = -1  #: the second the Date header says
    _exit = False
    _wake: Callable[[], None] | None = None  #: wakes :meth:`main_loop` (None: not running)

    @property
    def should_exit(self) -> bool:  # type: ignore[override]
        """uvicorn's flag to stop serving; setting it True wakes :meth:`main_loop` at once (from any thread)."""
        return self._exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._exit = value
        if value and (wake := self._wake) is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nothing waits any more
                wake()

    async def main_loop(self) -> None:
        """uvicorn's (:meth:`on_tick` until it says exit), ticking once per second of the service clock, just past
        it (:func:`till_next_second`), or at once when ``should_exit`` is set."""
        loop, stop = asyncio.get_running_loop(), asyncio.Event()
        self._wake = lambda: loop.call_soon_threadsafe(stop.set)
        try:
            counter = 0  # a multiple of 10 each tick: uvicorn's once-a-second duties run at every one
            exit_now = await self.on_tick(counter)
            while not exit_now:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), till_next_second(clock.now()))
                counter = (counter + 10) % 864000
                exit_now = await self.on_tick(counter)
        finally:
            self._wake = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, with SIGHUP too (a closed terminal, and the kernel's SIGHUP to a process group orphaned with a
        stopped member): before, it had no handler in ``gamead serve`` at all, which it then left mid-request, where
        a SIGTERM stops serving. One inherited as ignored (``nohup``) stays ignored. Once served, the first signal
        that stopped it is raised again, whatever came after it (uvicorn raised each again, the last first: a
        supervisor's SIGTERM, then a closed terminal's SIGHUP, ended the process by the SIGHUP, exit 129, not 143):
        a SIGTERM or SIGHUP takes its default action (the process ends by it), SIGINT its handler before (Python's:
        one ``interrupted`` line, exit 130), whatever handled them before the start (:mod:`gamead_cli.first_signals`).
        Another one after it, until the process ends, is ignored (:func:`gamead_core.first_stop.after_the_first`;
        from the first one's raise on by the kernel, :func:`~gamead_core.first_stop.after_stop`,
        the record the CLI's handlers share: before, a SIGTERM while a Ctrl-C's interrupt unwound ended ``gamead
        serve`` by SIGTERM, -15, not 130). In the main thread only (elsewhere nothing is changed)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        stops = [sig for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                 if sig == signal.SIGINT or signal.getsignal(sig) != signal.SIG_IGN]
        before = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
        try:
            yield
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler if sig == signal.SIGINT else after_the_first)
        if self._captured_signals:  # the first cause of the stop; a later one changes nothing
            first = acting if (acting := PHASE["acting"]) in before else self._captured_signals[0]  # the record's
            # every other stop ignored first, by the kernel (first_stop.after_stop): one landing before the raise
            # below ran its handler and won (fix56c); a Ctrl-C keeps its handler (its interrupt: one line, 130)
            after_stop(tuple(sig for sig in before if sig != signal.SIGINT or first != signal.SIGINT))
            if first == signal.SIGINT and not callable(before[signal.SIGINT]):  # inherited ignored (a background
                raise KeyboardInterrupt  # job's): raised again it would be ignored, and serve would end 0, unstopped
            signal.raise_signal(first)

    def handle_exit(self, sig: int, frame: Any) -> None:
        """uvicorn's (a first SIGTERM/SIGINT/SIGHUP stops serving, a second SIGINT forces the exit), and the stop's
        bound (:mod:`gamead_core.stop_bound`): ended within :data:`~gamead_core.stop_bound.API_BOUND` s however the
        lifespan's shutdown waits on NATS."""
        arm(API_BOUND, "serve")
        take(sig)  # the first stop, in the process's one record (gamead_core.first_stop)
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        exit_now = await super().on_tick(counter)
        # every tick (just past each second), once the second changed: uvicorn's once a second let it lag up to 1 s,
        # and a node paused for 8 s (SIGSTOP, a VM) answered with the pre-pause second until its next refresh
        # (newcomer33 F1); a tick due during a pause runs as soon as the loop runs again
        if (second := int(now := clock.now())) != self._second or counter % 10 == 0:  # uvicorn's own rewrite
            self._second = second
            self.server_state.default_headers = [(b"date", formatdate(now, usegmt=True).encode()),
                                                 *self.config.encoded_headers]
        return exit_now

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the lifespan's start-up; no server of uvloop's
        collector.start_sweeps()  # a burst's garbage freed and its heap given back within a sweep (attack38b F6)
        config, loop = self.config, asyncio.get_running_loop()

        def factory() -> asyncio.Protocol:
            return config.http_protocol_class(config=config, server_state=self.server_state,  # type: ignore[call-arg]
                                              app_state=self.lifespan.state, _loop=loop)

        acceptors = [Acceptor(loop, sock, factory, self.server_state) for sock in sockets or []]
        self.servers = acceptors  # type: ignore[assignment]  # close() and wait_closed(), all uvicorn asks of them
        for sock in sockets or []:  # uvicorn says it only for sockets it made: said here, the port taken for 0 too
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            log.info("serving on http://%s:%d", shown, port, extra={"api_url": f"http://{shown}:{port}"})
