"""Deadlines for JetStream acks without a timer per message: one timer per (event loop, timeout) for all of them.

``js.publish(timeout=…)`` waits for its ack with ``asyncio.wait_for``: a timer armed and cancelled, a second
future and two callbacks per message, ~10-25 µs of the ~180 µs a ``POST /ads`` cost in-process (issue 14.4).
:func:`expire_after` instead queues ``(deadline, future)``: futures watched with the same timeout expire in the
order they were watched, so one timer, armed for the oldest deadline still pending, serves all of them. When
it fires it drops the futures already done, fails the expired ones with :class:`asyncio.TimeoutError` (what
``wait_for`` raises; :func:`gamead_core.queue.connection.translate` makes it ``QueueUnavailable`` "NATS did not
answer in time") and arms itself for the next. A future is never failed before its deadline and at most one
event-loop turn after it; memory is bounded by the futures pending within one timeout (done ones are dropped
from the head of the queue at every watch).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any
from weakref import WeakKeyDictionary

__all__ = ["expire_after"]


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
            self.timer = self.loop.call_at(items[0][0], self._expire)

    def _expire(self) -> None:
        self.timer = None
        items = self.items
        now = self.loop.time()
        while items:
            deadline, future = items[0]
            if not future.done():
                if deadline > now:
                    break
                future.set_exception(asyncio.TimeoutError())
            items.popleft()
        if items:
            self.timer = self.loop.call_at(items[0][0], self._expire)


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
