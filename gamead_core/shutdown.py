"""The last writes of a process on its way out (release a lease, delete its heartbeat, hand a job back),
done so that stopping is prompt and quiet whatever NATS is doing.

* NATS away (the connection is reconnecting or closed): the write is not attempted at all. It could only wait
  for its timeout; what it would have cleaned up expires by itself (a lease's TTL, the registry's TTL, a
  job's lease). One line says so.
* NATS there: the write gets ``timeout`` seconds. Cancelling the caller does not cancel it (as
  ``asyncio.shield`` would not), and its outcome is always read, so a write that fails after its caller
  gave up never surfaces as "Task exception was never retrieved".
* A write that tells the others something nothing else will (a clean stop's delete mark and note: without them
  the node is judged a death and its running ad charged) is tried again until it lands or its stop's time for
  it ends (:func:`last_writes`): NATS away at the stop, or not answering, and back within it (attack44b F2: tried
  once, 2 s into a stop, the process reconnected 3 s before it exited and wrote nothing).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from gamead_core.errors import QueueUnavailable
from gamead_core.stop_bound import ended

T = TypeVar("T")
#: seconds a last write of :func:`last_writes` waits at most for NATS away (reconnecting): a nats-server restarted
#: (``gamead up`` restarts a frozen or dead one within ~1 s of its kill) is reached again within about 2 s; the
#: outages of attack44b F2 ended 2 s after the stop's last try
AWAY_WAIT = 5.0
log = logging.getLogger(__name__)
#: the NATS clients gamead itself closed (:func:`close_connection`): any other closed client nats-py closed
_OURS: weakref.WeakSet[Any] = weakref.WeakSet()


def closed_by_us(nc: Any) -> bool:
    """True if gamead closed (or is closing) ``nc`` itself, not nats-py on a server ``-ERR``
    (:mod:`gamead_core.queue.closed`)."""
    return nc in _OURS


def mark_ours(nc: Any) -> None:
    """Record that gamead closes ``nc`` (call before ``nc.close()``/``drain()``; :func:`close_connection` does)."""
    _OURS.add(nc)


def _read_outcome(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()  # read: a failure after the caller gave up is expected, and not worth a warning


async def last_write(call: Callable[[], Awaitable[T]], *, timeout: float, connected: bool = True) -> T:
    """Run ``call()`` for at most ``timeout`` seconds. Raises :class:`QueueUnavailable` at once when not
    ``connected``, ``asyncio.TimeoutError`` when it took too long (the write is then cancelled), or what the
    call raised."""
    if not connected:
        raise QueueUnavailable("NATS is away")
    task = asyncio.ensure_future(call())
    task.add_done_callback(_read_outcome)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        raise asyncio.TimeoutError
    return task.result()


async def last_writes(call: Callable[[], Awaitable[T]], *, until: float, connected: Callable[[], bool],
                      each: float = 2.0, pause: float = 0.25, away_for: float = AWAY_WAIT) -> T:
    """Run ``call()`` (idempotent) until it succeeds or the event loop's clock passes ``until`` (s, ``loop.time()``):
    each try gets at most ``each`` seconds (:func:`last_write`), a failed one is followed by another ``pause`` s
    later, and none begins while ``connected()`` is False (NATS away: waited for, looked at every ``pause`` s, for
    ``away_for`` s at most: NATS gone for good must not hold a stop, test_shutdown). The first try is made even past
    ``until`` when connected. Returns what the call returned; raises the last try's error (:class:`QueueUnavailable`
    when NATS stayed away, ``asyncio.TimeoutError``, or what the call raised)."""
    loop = asyncio.get_running_loop()
    away_until = min(until, loop.time() + away_for)
    while True:
        left = until - loop.time()
        try:
            return await last_write(call, timeout=min(each, left) if left > 0 else each, connected=connected())
        except Exception:
            end = until if connected() else away_until
            if end - loop.time() <= pause:
                raise
        await asyncio.sleep(pause)


def quiet_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """From now on (a process on its way out), a future that failed with nobody reading it is one DEBUG line,
    not an ERROR with a traceback: nats-py's own ``drain`` gathers its subscriptions' drains and leaves that
    gather unread when it gives up (NATS stopped answering: "_GatheringFuture exception was never retrieved",
    reviewer V8). Every other loop error still goes to the handler that was there (default: ERROR)."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if str(context.get("message", "")).endswith("exception was never retrieved"):
            log.debug("left unread on the way out: %r", context.get("exception"))
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


async def close_connection(nc: Any, *, drain_timeout: float = 5.0) -> None:
    """Close a NATS connection on the way out: drained (pending publishes flushed, subscriptions ended, at
    most ``drain_timeout`` seconds, 0: not drained) when NATS is there, closed at once when it is away (a drain of a
    reconnecting client raises, and could only wait for a server that is not coming back in time). Never
    raises."""
    if nc is None or nc.is_closed:
        return
    mark_ours(nc)  # before drain/close: its closed_cb must not take it for nats-py's close
    quiet_leftovers(asyncio.get_running_loop())
    if nc.is_connected and drain_timeout > 0:
        try:
            await last_write(nc.drain, timeout=drain_timeout)
            return
        except Exception as exc:  # noqa: BLE001 - NATS went or is slow: close without draining
            log.debug("draining the NATS connection failed: %r", exc)
    await close_for_good(nc)


async def close_for_good(nc: Any, timeout: float = 2.0) -> None:
    """``nc.close()`` within ``timeout`` s, and nats-py's reconnection loop ended with it (at most ``timeout`` s
    more), marked ours first (:func:`mark_ours`). Never raises.

    Why the loop (flakes51B): nats-py's close cancels it once, and Python 3.11's ``asyncio.wait_for`` takes a cancel
    that comes as the await it wraps ends (a connect refused by a server that is gone): the loop goes on trying every
    ``reconnect_time_wait`` after the close, for ever, and ``asyncio.run``'s exit waits on it (one cancel, taken the
    same way: a test's run hung until pytest-timeout's 120 s, 1,140 refused connects logged). :func:`ended` cancels
    it again until it ends."""
    mark_ours(nc)  # its closed_cb must not take it for nats-py's close
    try:
        await asyncio.wait_for(nc.close(), timeout)
    except Exception as exc:  # noqa: BLE001 - nats-py can fail writing to a dead socket; we are leaving
        log.debug("closing the NATS connection failed: %r", exc)
    reconnecting = getattr(nc, "_reconnection_task", None)  # nats-py keeps it there (no public handle)
    if reconnecting is not None and not reconnecting.done():
        await ended([reconnecting], timeout, "nats-py's reconnection loop of a closed connection")


__all__ = ["AWAY_WAIT", "close_connection", "close_for_good", "closed_by_us", "last_write", "last_writes", "mark_ours",
           "quiet_leftovers"]
