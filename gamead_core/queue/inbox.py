"""A (level, partition)'s inbox of the puller (:mod:`gamead_core.queue.long_poll`): the ads its ``no_wait`` pulls and
its long poll were answered with, until a pull takes them.

Each arrival is told (``arrived``): an ad can reach a worker whose slots are all busy (its long polls are put back
as a pull takes ads, and a suspect ad running alone blocks the rest), and until a slot freed it waited here neither
held nor announced in the worker's registry entry nor kept alive; a crash meanwhile left it to the consumer's
``ack_wait`` (crashflake50: an innocent ad ``queued`` for 160 s of a 300 s ack_wait). The worker's wake-up holds
it at once (:meth:`gamead_core.worker.runtime.Worker._loop`).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Iterator

from nats.aio.msg import Msg

from gamead_core.queue.pull_request import is_status


class Inbox(asyncio.Queue[Msg]):
    """A (level, partition)'s inbox: an ``asyncio.Queue`` whose waiting messages can be looked at in place, each
    with when it came (``time.monotonic()``, s); ``arrived()`` is called at each one's arrival (None: nothing)."""

    arrived: Callable[[], None] | None = None

    def _init(self, maxsize: int) -> None:  # asyncio.Queue's store hooks, as its own subclasses override them
        super()._init(maxsize)
        self._came: collections.deque[float] = collections.deque()

    def _put(self, item: Msg) -> None:
        self._queue.append(item)
        self._came.append(time.monotonic())
        if self.arrived is not None and not is_status(item):  # a late 404/408 brings nothing to hold
            self.arrived()

    def _get(self) -> Msg:
        self._came.popleft()
        return self._queue.popleft()

    def waiting(self, came_within: float | None = None) -> Iterator[Msg]:
        """The messages in the inbox now, first in first, without taking them (iterate at once: no await between);
        with ``came_within`` (s) only those that came no longer ago than that."""
        if came_within is None:
            return iter(self._queue)
        since = time.monotonic() - came_within
        return (m for m, at in zip(self._queue, self._came) if at >= since)


__all__ = ["Inbox"]
