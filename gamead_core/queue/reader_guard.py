"""The guard of a NATS connection: a read loop that died is found and the connection reconnected, a server that
stopped answering is left for another, and a close nats-py did not tell is taken as one it told.

nats-py 2.16 can wedge a client for good: a ``flush(timeout)`` that times out leaves its cancelled PONG future
queued; the late PONG's ``set_result`` raises ``InvalidStateError``, the read loop ends (``except Exception:
break``) while the client still says connected and never reconnects (nats-io/nats.py #624, #636, #853). So
gamead never uses ``flush`` as a probe (:func:`gamead_core.queue.liveness.round_trip` is a JetStream API request,
whose late answer is dropped), and every connection made by :func:`gamead_core.queue.connection.connect` is guarded
(:func:`guard_reader`): a dead reader is found within a second and the connection reconnected.

The guard also asks the server a connection is on whether it still answers: one PING a second (never a
``flush``: the guard never cancels its PONG's future). A server that leaves it unanswered for ``nats.stale_after``
seconds (3 s; stopped by SIGSTOP, frozen, cut off) is left for another server of ``nats.url``: the socket is
dropped (its unsent bytes with it: their requests time out) and nats-py reconnects (nats-py's own PINGs, 10 s × 3,
kept an API and the workers on a stopped server of three for 30-37 s). :func:`unanswered_for` tells ``/readyz``.

nats-py 2.16 closes a client for good without its ``closed_cb`` on some paths: a server ``-ERR`` its read loop meets
while the client is still connecting (``Client._process_err``: ``do_cbs = not is_connecting``; a handshake that
read a server's ``INFO`` where its ``PONG`` should be), a close that fails before it calls them (``Client._close``
draining a socket already reset). The watch that ends a worker or an API on a closed client is woken only by that
callback's news (:mod:`gamead_core.queue.client_news`): it waited for ever, a worker that neither worked nor exited
(leftout60A; a reading of load59B, where a worker whose token a config reload rotated never exited). So the guard,
once it sees its client closed, however nats-py came to it, calls what the ``closed_cb`` calls (its ``on_closed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.client import Client as NATS

log = logging.getLogger(__name__)

#: seconds between two looks at a connection's read loop (an attribute read: no traffic) and two PINGs of the guard
READER_CHECK_INTERVAL = 1.0
_PING = b"PING\r\n"


@dataclass
class _Pulse:
    """The guard's PING to the server a connection is on, awaiting its PONG."""

    transport: object = None  #: the transport it went on
    pongs: list[asyncio.Future[bool]] | None = None  #: nats-py's list of awaited PONGs it joined: a reconnect
    #: makes a new one (the transport object is reused), so another list means the PING went on an older socket
    pong: asyncio.Future[bool] | None = None  #: completed by nats-py's read loop when the PONG comes
    sent_at: float = 0.0  #: loop time it was sent
    misses: int = 0  #: guard rounds it has been unanswered (a blocked event loop counts one round, not its seconds)

    def current(self, nc: NATS) -> bool:
        """True if this pulse's PING went on ``nc``'s present connection (same transport, same PONG list)."""
        return self.transport is getattr(nc, "_transport", 0) and self.pongs is getattr(nc, "_pongs", 0)


_PULSES: weakref.WeakKeyDictionary[NATS, _Pulse] = weakref.WeakKeyDictionary()


def unanswered_for(nc: NATS | None) -> float:
    """Seconds the guard's PING to the server ``nc`` is on has waited for its PONG (0: answered, or none out),
    counted in guard rounds (:data:`READER_CHECK_INTERVAL` each): an event loop blocked for seconds counts one
    round, so a stalled API never reads its own stall as a silent server (review14b)."""
    pulse = _PULSES.get(nc) if nc is not None else None
    if pulse is None or pulse.pong is None or pulse.pong.done() or not pulse.current(nc):  # type: ignore[arg-type]
        return 0.0
    return pulse.misses * READER_CHECK_INTERVAL


def reader_alive(nc: NATS) -> bool:
    """True while the client's read loop runs (or the client is not connected, when nats-py restarts it on
    reconnect). False means: connected, yet nothing reads the socket; answers and PONGs are never seen."""
    if not nc.is_connected or nc.is_draining:
        return True
    task = getattr(nc, "_reading_task", None)
    return task is not None and not task.done()


def _abort_socket(nc: NATS) -> None:
    writer = getattr(getattr(nc, "_transport", None), "_io_writer", None)
    transport = getattr(writer, "transport", None)
    if transport is not None:
        with contextlib.suppress(Exception):
            transport.abort()  # unsent bytes are dropped: their requests time out and answer 503, never 202


async def recover_reader(nc: NATS) -> bool:
    """If ``nc`` is connected with a dead read loop, drop its socket and let nats-py reconnect
    (``Client.force_reconnect``: a new socket, read loop, flusher and subscriptions). True if it did."""
    if reader_alive(nc) or nc.is_closed or nc.is_reconnecting:
        return False
    log.warning("the NATS client's read loop has died while connected; reconnecting",
                extra={"client": nc.options.get("name")})
    _abort_socket(nc)  # so closing the transport cannot wait on a write buffer a stalled server never reads
    await nc.force_reconnect()
    return True


def _unstick_reconnect(nc: NATS) -> None:
    """While nats-py reconnects, the socket it left is closing; ``close`` waits for its unsent bytes, which a
    stopped server never reads (nats-py's own stale PINGs then hang in ``wait_closed``): dropped at once."""
    writer = getattr(getattr(nc, "_transport", None), "_io_writer", None)
    transport = getattr(writer, "transport", None)
    if nc.is_reconnecting and transport is not None and transport.is_closing():
        with contextlib.suppress(Exception):
            transport.abort()


async def check_answers(nc: NATS, stale_after: float) -> bool:
    """One round of the guard's PINGs: send one if none is out; if the one out has gone unanswered for
    ``stale_after`` seconds of rounds, drop the socket and let nats-py reconnect to another server of its list
    (``Client.force_reconnect``). True if it did. Needs the read loop alive (see :func:`recover_reader`)."""
    pulse = _PULSES.setdefault(nc, _Pulse())
    transport, pongs = getattr(nc, "_transport", None), getattr(nc, "_pongs", None)
    if not isinstance(pongs, list):  # nats-py changed its internals: no PINGs of ours (its own still run)
        return False
    if not nc.is_connected or nc.is_draining or not pulse.current(nc):
        pulse.transport, pulse.pongs, pulse.pong, pulse.misses = transport, pongs, None, 0
        if not nc.is_connected or nc.is_draining:
            return False
    if pulse.pong is not None and not pulse.pong.done():
        pulse.misses += 1
        # with one server known (nats.url and the cluster's gossip) there is nowhere else to go: dropping the
        # socket of a slow server would only lose its unsent bytes (nats-py's own stale PINGs still apply)
        if pulse.misses * READER_CHECK_INTERVAL < stale_after or len(nc.servers) < 2:
            return False
        log.warning("the NATS server this connection is on has not answered a PING for %.0f s; leaving it for "
                    "another server of nats.url", unanswered_for(nc), extra={"client": nc.options.get("name")})
        pulse.pong, pulse.misses = None, 0
        _abort_socket(nc)
        await nc.force_reconnect()
        return True
    loop = asyncio.get_running_loop()
    pulse.pong, pulse.sent_at, pulse.misses = loop.create_future(), loop.time(), 0
    # as nats-py's own PINGs (Client._send_ping), without awaiting its flush queue, which a stalled server fills:
    # the PONGs come in order and complete the futures of _pongs in order; this one is never cancelled (#624)
    pongs.append(pulse.pong)
    transport.write(_PING)  # type: ignore[union-attr]
    return False


async def _guard(nc: NATS, stale_after: float | None, on_closed: Callable[[], Awaitable[None]] | None) -> None:
    while not nc.is_closed:
        try:
            _unstick_reconnect(nc)
            if not await recover_reader(nc) and stale_after:
                await check_answers(nc, stale_after)
        except Exception:  # noqa: BLE001 - a guard must outlive any one failed attempt
            log.exception("guarding the NATS connection failed; trying again")
        await asyncio.sleep(READER_CHECK_INTERVAL)
    if on_closed is not None:  # nats-py may have closed it without its closed_cb (see the module's docstring)
        try:
            await on_closed()
        except Exception:  # noqa: BLE001 - logged: a task nobody awaits would only say it at exit
            log.exception("taking the NATS connection's close failed")


#: the guards running, so they are not garbage collected mid-flight (asyncio keeps weak references to tasks)
_GUARDS: set[asyncio.Task[None]] = set()


def guard_reader(nc: NATS, stale_after: float | None = None,
                 on_closed: Callable[[], Awaitable[None]] | None = None) -> None:
    """Watch ``nc`` until it is closed: a dead read loop (see :func:`reader_alive`) is recovered within
    :data:`READER_CHECK_INTERVAL` seconds (:func:`recover_reader`), and with ``stale_after`` (seconds:
    ``nats.stale_after``) a server that stopped answering PINGs is left for another (:func:`check_answers`).
    Once it is closed, ``on_closed`` is awaited (within :data:`READER_CHECK_INTERVAL` s): what the client's
    ``closed_cb`` does, so it must take being called after nats-py called that too, or instead of it. Called by
    :func:`gamead_core.queue.connection.connect` for every connection; call it for a client made with
    ``nats.connect`` directly."""
    task = asyncio.get_running_loop().create_task(_guard(nc, stale_after, on_closed),
                                                  name="gamead-nats-reader-guard")
    _GUARDS.add(task)
    task.add_done_callback(_GUARDS.discard)
