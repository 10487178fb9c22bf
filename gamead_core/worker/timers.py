"""Callbacks due a fixed delay after they were added, on one timer for all of them (:class:`Deadlines`).

The worker arms the same delays for every ad it holds: the time limit of an attempt (``worker.task_timeout``),
its ``processing`` mark (``worker.processing_mark_after``), the ack-wait keep-alive (``queue.ack_wait / 3``).
A timer handle per ad and per delay (uvloop: a libuv timer started and stopped each; ``asyncio.timeout``: a
context object besides) cost ~1.5-6 µs each, for deadlines that almost never fire (issue 14.2). With one
delay, deadlines fall due in the order they were added: a dict in insertion order (the live ones only: a
removed key leaves at once, so memory is bounded by what is held) and one timer, armed for the oldest, serve
all of them. When it fires it runs every callback now due, oldest first, and re-arms for the next; a removed
head only makes the timer fire once early and re-arm. A callback runs at most one event-loop turn late, never
early.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger(__name__)


class Deadlines:
    """``callback(*args)`` ``delay`` seconds after :meth:`add`, unless :meth:`remove` came first; one timer for
    all (see the module doc). Use from one event loop."""

    __slots__ = ("delay", "_due", "_timer", "_loop")

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._due: dict[Hashable, tuple[float, Callable[..., Any], tuple[Any, ...]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._due

    def add(self, key: Hashable, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` in ``delay`` seconds; a pending one under ``key`` is replaced (and its
        deadline with it)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        due = self._due
        due.pop(key, None)  # re-added: to the end (a dict keeps an updated key in its old place)
        at = loop.time() + self.delay
        due[key] = (at, callback, args)
        if self._timer is None:
            self._timer = loop.call_at(at, self._fire)

    def shorten(self, delay: float) -> None:
        """From now on callbacks are due ``delay`` seconds after :meth:`add`; a pending one due later than
        ``delay`` from now is brought forward to it (the order stays: ``min(at, now + delay)`` keeps it sorted); a
        longer ``delay`` leaves the pending ones as they are."""
        self.delay = delay
        loop = self._loop
        if loop is None or not self._due:
            return
        cap = loop.time() + delay
        self._due = {k: (min(at, cap), cb, args) for k, (at, cb, args) in self._due.items()}
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(next(iter(self._due.values()))[0], self._fire)

    def remove(self, key: Hashable) -> bool:
        """Drop the pending callback under ``key``; True if there was one."""
        return self._due.pop(key, None) is not None

    def _fire(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        due = self._due
        while due:
            key = next(iter(due))
            at, callback, args = due[key]
            if at > now:
                break
            del due[key]
            try:
                callback(*args)  # may add (to the end) or remove keys: the loop looks at the head again
            except Exception:  # noqa: BLE001 - one callback's failure must not stop the others' deadlines
                log.exception("deadline callback %r failed", callback)
        if self._timer is not None:  # armed by an add() of a callback: for a later deadline than the head's
            self._timer.cancel()
            self._timer = None
        if due:
            self._timer = loop.call_at(next(iter(due.values()))[0], self._fire)
