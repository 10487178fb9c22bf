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
  lowered, if something set them higher): the same cycles are collected, in fewer, larger collections. What
  waits for collection is bounded by the threshold: at most 50,000 objects in cycles, a few MB. What start-up
  left alive and later drops is freed by reference counting as ever; only a start-up object caught in a cycle
  that dies later is kept (a one-time, bounded amount).

Measured (``benchmarks/bench_worker_drain.py --ads 4000 --rounds 1``, one worker, a ``gc.callbacks`` timer in it):
the collector took 0.195 s in 303 collections of the worker's 4.15 s of CPU; with these thresholds 0.044 s in 2.
In the API (``benchmarks/bench_submit_profile.py``, 64 submits in flight, in-process) it took 23-42 µs of every
``POST /ads`` (~200 µs) before the freeze, 0-7 µs after.
"""

from __future__ import annotations

import gc

#: young-generation threshold: allocations net of deallocations between two collections (CPython's default 700)
YOUNG_THRESHOLD = 50_000
#: how many younger collections before an older one: (middle, oldest); CPython's default (10, 10)
OLDER_THRESHOLDS = (20, 100)


def tune() -> None:
    """Collect once, freeze what survives out of every later collection and raise the thresholds (the module
    doc). Process-wide and for good; call it once, in the process that will run the role, after its start-up and
    before its event loop (benchmarks that run the app in-process call it as ``serve`` does); returns None."""
    gc.collect()  # what is garbage now is not frozen for ever
    gc.freeze()
    ours = (YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    gc.set_threshold(*(max(now, new) for now, new in zip(gc.get_threshold(), ours, strict=True)))
