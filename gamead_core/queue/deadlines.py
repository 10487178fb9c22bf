"""Deadlines for JetStream acks without a timer per message: one timer per (event loop, timeout) for all of them.

``js.publish(timeout=…)`` waits for its ack with ``asyncio.wait_for``: a timer armed and cancelled, a second
future and two callbacks per message, ~10-25 µs of the ~180 µs a ``POST /ads`` cost in-process (issue 14.4).
:func:`expire_after` instead queues ``(deadline, future)``: futures watched with the same timeout expire in the
order they were watched, so one timer, armed for the oldest deadline still pending, serves all of them. When
it fires it drops the futures already done, fails the expired ones with :class:`asyncio.TimeoutError` (what
``wait_for`` raises; :func:`gamead_core.queue.connection.translate` makes it ``QueueUnavailable`` "NATS did not
answer in time") and arms itself for the next. A future is never failed before its deadline; memory is bounded by
the futures pending within one timeout (done ones are dropped from the head of the queue at every watch).

**A stalled loop is not a silent server.** When the event loop itself did not run (the process stopped by
SIGSTOP, starved of CPU, or blocked), the acks that came meanwhile wait unread in the socket, and the loop runs
due timers before it reads it (uvloop: libuv's timers phase comes before its poll). Failing then answered "may
still be queued" (503) for ads JetStream had stored in time (note 28's leftover). So every expired deadline gets
:data:`GRACE` more seconds of a running loop to read what came before its future is failed (:func:`respite`, used
by the batch's group timer of :mod:`gamead_core.queue.acks` too): a server that truly did not answer is failed
:data:`GRACE` late (at most twice that: the timer is re-armed no sooner than a pending grace ends). Not inferred
from how late the timer ran (review29 F5: a stall ending within that margin of a deadline still failed acks that
had come in time).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any
from weakref import WeakKeyDictionary

__all__ = ["GRACE", "expire_after", "respite"]

#: seconds of a running loop an expired deadline is given to read the answers that came while it stood still
GRACE = 0.05


def respite(loop: asyncio.AbstractEventLoop) -> float:
    """The loop time (s) at which a deadline that has just passed is failed: :data:`GRACE` from now (the module
    doc). Call it once per deadline: a grace is not extended again."""
    return loop.time() + GRACE


class _Queue:
    """The futures of one loop watched with one timeout, oldest first, and the one timer for the oldest."""

    __slots__ = ("loop", "timeout", "items", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.items: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def watch(self, future: asyncio.Future[Any]) -> None:
        items = self.items
        while items and items[0][1].done():
            items.popleft()
        items.append((self.loop.time() + self.timeout, future))
        if self.timer is None:
            self._arm(items[0][0])

    def _expire(self) -> None:
        self.timer = None
        items = self.items
        now = self.loop.time()
        later = respite(self.loop)
        graced = []  # expired: failed at the end of their grace, if still unanswered
        while items:
            deadline, future = items[0]
            if not future.done():
                if deadline > now:
                    break
                graced.append(future)  # what came while the loop stood still is read first (the module doc)
            items.popleft()
        if graced:
            self.loop.call_at(later, self._fail_graced, graced)
        if items:
            self._arm(max(items[0][0], later))

    def _arm(self, when: float) -> None:
        self.timer = self.loop.call_at(when, self._expire)

    @staticmethod
    def _fail_graced(futures: list[asyncio.Future[Any]]) -> None:
        for future in futures:
            if not future.done():
                future.set_exception(asyncio.TimeoutError())


_QUEUES: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, _Queue]] = WeakKeyDictionary()


def expire_after(future: asyncio.Future[Any], timeout: float) -> None:
    """Fail ``future`` with :class:`asyncio.TimeoutError` if it is not done ``timeout`` seconds (> 0) from now.
    Call it from the future's event loop; costs a deque append (no timer of its own)."""
    loop = future.get_loop()
    queues = _QUEUES.get(loop)
    if queues is None:
        queues = _QUEUES[loop] = {}
    queue = queues.get(timeout)
    if queue is None:
        queue = queues[timeout] = _Queue(loop, timeout)
    queue.watch(future)
