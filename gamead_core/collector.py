"""The garbage collector of a long-running role (``gamead serve``, ``gamead worker``), set once it has started.

CPython's cyclic collector runs on the young generation each time allocations outrun deallocations by 700
(``gc.get_threshold()``: ``(700, 10, 10)``), and every tenth of those also walks the middle generation. An ad
allocates a few thousand container objects on its way through a worker or an API, so the collector ran ~75 times
per 1,000 ads, mostly to find nothing: it reclaims only reference cycles, and the hot paths make few. And every
full pass walked what start-up built (a serving API holds ~100,000 long-lived objects: FastAPI's routes and
schemas, pydantic's validators, prometheus metrics, nats-py).

:func:`tune` (called after start-up, before the event loop runs):

* one collection, then ``gc.freeze()`` moves what survives (modules, settings, the app, the worker) into the
  permanent generation, which no later collection walks (the CPython documentation of :func:`gc.freeze`);
* the young threshold goes from 700 to :data:`YOUNG_THRESHOLD` (50,000), the older ones to 20 and 100 (never
  lowered, if something set them higher): the same cycles are collected, in fewer, larger collections.

What those thresholds leave waiting (attack38b F6): a cycle still alive at a young collection (a connection
open for seconds, a long poll's subscription, whose nats-py iterator refers back to it) moves to an older
generation, and the oldest is walked only every 20 × 100 young collections (~100 million allocations: tens of
thousands of ads), and never while the process idles. So each connection of a burst stayed as garbage: 5,000
keep-alive connections took an API from 88 to 155 MB, 157,329 objects a full collection freed (53 → 23 MB of
the C heap in use); a soak's workers rose from 69 to 104-106 MB before their first full pass. Hence
:func:`start_sweeps`, which every :data:`SWEEP_EVERY` seconds runs one full collection (it walks only what was
made since the freeze: a few ms for a worker, ~0.2 s once after 5,000 connections) and then gives the C heap's
free pages back to the system (glibc's ``malloc_trim(0)``: the freed memory otherwise stays in the process's
RSS, measured 149 → 115 MB after that burst).

Measured (``benchmarks/bench_worker_drain.py --ads 4000 --rounds 1``, one worker, a ``gc.callbacks`` timer in it):
the collector took 0.195 s in 303 collections of the worker's 4.15 s of CPU; with these thresholds 0.044 s in 2.
In the API (``benchmarks/bench_submit_profile.py``, 64 submits in flight, in-process) it took 23-42 µs of every
``POST /ads`` (~200 µs) before the freeze, 0-7 µs after.
"""

from __future__ import annotations

import asyncio
import gc
import logging

from gamead_core.libc import libc_function

log = logging.getLogger(__name__)

#: young-generation threshold: allocations net of deallocations between two collections (CPython's default 700)
YOUNG_THRESHOLD = 50_000
#: how many younger collections before an older one: (middle, oldest); CPython's default (10, 10)
OLDER_THRESHOLDS = (20, 100)
#: seconds between two sweeps (a full collection, then the C heap's free pages given back): at most this long
#: does a burst's garbage outlive it
SWEEP_EVERY = 30.0


def tune() -> None:
    """Collect once, freeze what survives out of every later collection and raise the thresholds (the module
    doc). Process-wide and for good; call it once, in the process that will run the role, after its start-up and
    before its event loop (benchmarks that run the app in-process call it as ``serve`` does); returns None."""
    gc.collect()  # what is garbage now is not frozen for ever
    gc.freeze()
    ours = (YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    gc.set_threshold(*(max(now, new) for now, new in zip(gc.get_threshold(), ours, strict=True)))


_TRIM = libc_function("malloc_trim")  #: glibc's ``malloc_trim`` (int → int); None without one (musl, macOS)


def sweep() -> int:
    """One full collection of every generation but the frozen one, then the C heap's free pages handed back to
    the system (``malloc_trim(0)``, glibc only). Returns how many unreachable objects the collection found."""
    found = gc.collect()
    if _TRIM is not None:
        _TRIM(0)
    return found


class Sweeps:
    """The sweeps :func:`start_sweeps` runs on an event loop: ``cancel()`` stops them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, every: float) -> None:
        self._loop, self._every = loop, every
        self._next = loop.call_later(every, self._run)

    def _run(self) -> None:
        try:
            sweep()
        except Exception:  # never the loop's end: the next sweep still runs
            log.exception("a garbage-collector sweep failed")
        self._next = self._loop.call_later(self._every, self._run)

    def cancel(self) -> None:
        """No more sweeps (the one running, if any, ends as it would)."""
        self._next.cancel()


def start_sweeps(every: float = SWEEP_EVERY) -> Sweeps:
    """Run :func:`sweep` every ``every`` seconds on the running event loop (call it from a coroutine of the role's
    loop, once); returns the :class:`Sweeps` (``cancel()`` stops them). A sweep that raises is logged and the next
    one still runs."""
    return Sweeps(asyncio.get_running_loop(), every)
