"""One run per key at a time, shared (single-flight): whoever asks for a key while its run is under way awaits that
run (its value, or its error) instead of starting another; with ``keep``, a run that ended less than ``keep``
seconds ago answers too.

The one owner of that rule for gamead's shared reads:

* the DLQ and audit pages dashboards repeat (:class:`gamead_core.api.shared_reads.SharedReads`, attack37 F1), which
  keep their answers themselves (byte-bounded, as old as each caller accepts);
* a job's document its progress streams poll (:class:`gamead_core.jobs.runner.JobRunner`, attack47 F5): each
  ``GET /v1/jobs/{id}/events`` read the job every 0.25 s, so 2,000 followers of one job were ~6,000 JetStream
  requests a second from one node, which then answered unrelated requests 503 ``queue_unavailable``. With
  ``keep=0.25`` a node reads a job at most once per 0.25 s, however many follow it, and no follower sees a
  document older than its own read every 0.25 s would have given it.

Outcomes kept are held in a cachetools ``TTLCache`` (at most ``most`` keys, each for ``keep`` seconds from when its
run ended); runs under way in a dict of their tasks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from cachetools import TTLCache

K = TypeVar("K")
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """:meth:`run` shared by key. ``keep``: seconds a run's outcome (value or error) still answers after it ended
    (0: none; only runs under way are joined); ``most``: outcomes kept at most; ``clock``: monotonic seconds."""

    def __init__(self, keep: float = 0.0, most: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self._runs: dict[K, asyncio.Future[V]] = {}
        self._ended: TTLCache[K, asyncio.Future[V]] | None = (
            TTLCache(most, keep, timer=clock) if keep > 0 else None)

    def __contains__(self, key: object) -> bool:
        """Whether a run of ``key`` is under way (a caller asking now joins it)."""
        return key in self._runs

    def __len__(self) -> int:
        """Runs under way."""
        return len(self._runs)

    async def run(self, key: K, make: Callable[[], Awaitable[V]]) -> V:
        """``make()``'s value (or error) for ``key``: that of a run of ``key`` ended less than ``keep`` seconds ago,
        else of the run under way, else of a new one. A caller cancelled while it waits never cancels the run the
        others wait on, and an error nobody waits for any more is not logged as "never retrieved"."""
        ended = self._ended.get(key) if self._ended is not None else None
        if ended is not None:
            return ended.result()
        run = self._runs.get(key)
        if run is None:
            run = asyncio.ensure_future(make())
            self._runs[key] = run
            run.add_done_callback(lambda done, key=key: self._end(key, done))  # type: ignore[misc]
        return await asyncio.shield(run)

    def _end(self, key: K, run: asyncio.Future[V]) -> None:
        if self._runs.get(key) is run:
            del self._runs[key]
        if run.cancelled():
            return
        run.exception()  # looked at
        if self._ended is not None:
            self._ended[key] = run


__all__ = ["SingleFlight"]
