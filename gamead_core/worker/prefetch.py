"""The worker's prefetch buffer (``worker.prefetch``): deliveries pulled beyond the free slots, not started yet.

A busy worker with ``worker.concurrency`` slots frees them one at a time; pulling one ad per freed slot costs a
JetStream pull request (and an answer, a held-ads announcement, a look at the heads) per ad. With a backlog the
worker instead pulls up to ``free slots + worker.prefetch`` ads in one request and keeps those it cannot start
yet here. No I/O: the worker (:mod:`gamead_core.worker.runtime`) does the rest, and keeps the guarantees:

* **how many** – :func:`prefetch_depth`: as many as the worker's slots finish in ``worker.prefetch_wait`` at
  their recent pace, at most ``worker.prefetch``, none before an ad was timed: slow analyses are not hoarded
  while another worker could start them;
* **order** – buffered ads are started in the order of the aging rule
  (:func:`gamead_core.queue.aging.delivery_key`: ``due time + level × aging_step``, earliest first), and the
  puller is asked before each start for any ad of the queue whose key beats the buffer's best
  (``AgingPuller.pull(bar=…)``): an urgent ad that arrives meanwhile starts before buffered lower ones. A
  buffered ad waits at most ``worker.prefetch`` analyses of its worker (more only if more urgent ads keep
  arriving, which aging bounds as for any waiting ad);
* **held, not started** – each is in the worker's held ads (heartbeat ``holding``, ``started: false``: a crash
  does not charge it) and kept alive (``in_progress``) until it starts or is handed back;
* **bounded** – after each start step the buffer holds at most :func:`prefetch_depth` ads (≤ ``worker.prefetch``),
  whatever the pull brought (a long poll's ads, redeliveries beating the bar): the worst beyond it are handed
  back at once (:mod:`gamead_core.worker.handback`);
* **handed back at once** – on shutdown each is ``nak``'ed without delay, before the drain.
"""

from __future__ import annotations

import heapq
import itertools
import operator
from collections.abc import Iterator

from nats.aio.msg import Msg


#: Weight of the newest sample in the slot-time average (an exponentially weighted moving average).
PACE_WEIGHT = 0.2


def prefetch_depth(cap: int, slots: int, slot_time: float | None, wait: float) -> int:
    """How many ads to pull beyond the free slots (pure).

    ``cap`` is ``worker.prefetch``, ``slots`` ``worker.concurrency``, ``slot_time`` the recent mean seconds one
    ad holds a slot (None before one was timed), ``wait`` ``worker.prefetch_wait`` seconds (0 = no limit). As
    many as the slots finish in ``wait`` at that pace, at most ``cap``; none before the pace is known, so a
    worker that just started (or runs slow analyses) never takes ads another worker could start now."""
    if cap <= 0:
        return 0
    if wait <= 0:
        return cap
    if slot_time is None:
        return 0
    if slot_time <= 0:
        return cap
    return int(min(cap, slots * wait / slot_time))  # min first: a huge ratio is inf, which int() refuses


#: Shortest time (seconds) a full worker keeps its buffer without a slot freeing (:func:`buffer_stall`).
MIN_BUFFER_STALL = 1.0


def buffer_stall(wait: float) -> float | None:
    """Seconds a worker whose slots are all busy keeps its buffered ads before handing them back (pure):
    ``4 × worker.prefetch_wait``, at least :data:`MIN_BUFFER_STALL` (1 s with the default 50 ms), so one
    analysis far slower than the pace (a hung one, up to ``worker.task_timeout``) does not hold the ads buffered
    behind it while another worker could start them. None for ``prefetch_wait: 0`` (no limit: the buffer is
    kept, hoarding included)."""
    return None if wait <= 0 else max(MIN_BUFFER_STALL, 4 * wait)


def next_pace(slot_time: float | None, sample: float) -> float:
    """The slot-time average after one more ``sample`` (seconds): :data:`PACE_WEIGHT` of it, the first taken
    as it is."""
    return sample if slot_time is None else slot_time + PACE_WEIGHT * (sample - slot_time)


_SINCE = operator.itemgetter(3)  #: a buffered entry's ``since`` (:meth:`PrefetchBuffer.push`)


class PrefetchBuffer:
    """Buffered deliveries, best (lowest :func:`delivery_key`) first; ties in arrival order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Msg, object]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def __iter__(self) -> Iterator[Msg]:
        return (entry[2] for entry in self._heap)

    def push(self, msg: Msg, key: float, since: object = None) -> None:
        """Buffer ``msg`` under its aging ``key``, with ``since`` kept beside it for :meth:`waiting` (the worker's:
        :func:`~gamead_core.worker.unstarted.waited_since`)."""
        heapq.heappush(self._heap, (key, next(self._order), msg, since))

    def waiting(self) -> Iterator[object]:
        """The ``since`` of every buffered delivery (:meth:`push`), in no particular order (a ``map``, not a
        generator: read at every held-ads announcement, cpuworker48)."""
        return map(_SINCE, self._heap)

    def best_key(self) -> float | None:
        """The key of the next ad :meth:`pop` returns; None when empty."""
        return self._heap[0][0] if self._heap else None

    def bar_key(self, free: int) -> float | None:
        """The aging key of the ``free``-th best buffered ad: the last one that would start now in ``free`` slots
        (the best when ``free`` is 1). An ad in the queue takes a slot only if it beats this one, so the puller
        is asked with it as the bar (with the best ad's key instead, a P5 ad second in the buffer started in a
        second slot while P1 ads waited in the queue). None when the buffer is empty."""
        heap = self._heap
        if not heap:
            return None
        if free <= 1:
            return heap[0][0]
        # the free smallest of a binary heap lie in its first free levels (each entry is below its parent): the
        # keys of those 2**free - 1 entries alone are compared (drain46: a start step's ~30 buffered tuples were)
        keys = sorted([entry[0] for entry in (heap if free >= 20 else heap[:(1 << free) - 1])])
        return keys[min(free, len(keys)) - 1]

    def pop(self) -> Msg:
        """The best buffered delivery (raises ``IndexError`` when empty)."""
        return heapq.heappop(self._heap)[2]

    def take_worst(self, n: int) -> list[Msg]:
        """Remove and return the ``n`` worst buffered deliveries (highest keys; the latest arrival first among
        ties), worst first; none for ``n <= 0``."""
        if n <= 0:
            return []
        self._heap.sort()
        out = [entry[2] for entry in reversed(self._heap[-n:])]
        del self._heap[-n:]  # a sorted list is a heap
        return out

    def take_all(self) -> list[Msg]:
        """Empty the buffer: every delivery, best first (for the hand-back on shutdown)."""
        out = [heapq.heappop(self._heap)[2] for _ in range(len(self._heap))]
        return out

