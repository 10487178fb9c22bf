"""One read of a job's document shared by every progress stream of this node that follows it (attack47 F5).

Each ``GET /v1/jobs/{id}/events`` (and ``GET /v1/jobs/{id}`` asking for NDJSON) read the job from the jobs bucket
every ``STREAM_POLL`` (0.25 s) for as long as it stayed open, so N idle followers of one running job were 4 × N
JetStream requests a second from one node: 2,000 of them made ~6,000 a second, and the node answered unrelated
requests 503 ``queue_unavailable`` (NATS did not answer in time), its ``/healthz`` took up to 4.5 s and it missed
its registry heartbeat for 10 s. Now a read of a key that ended less than ``max_age`` ago, or one under way, answers
every caller that asks meanwhile (its document, or its error): at most one read per key per ``max_age`` on a node,
however many follow it, and no follower sees a document older than its own read every ``max_age`` gave it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class RecentReads(Generic[K, V]):
    """``read(key)`` shared: :meth:`get` joins the read of ``key`` under way, or takes the outcome of one that ended
    less than ``max_age`` seconds ago (``clock``: monotonic seconds), else starts one. A caller cancelled while it
    waits never cancels the read the others wait on. Holds only reads under way or younger than ``max_age``."""

    def __init__(self, read: Callable[[K], Awaitable[V]], max_age: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read, self.max_age, self._clock = read, max_age, clock
        self._reads: dict[K, tuple[float | None, asyncio.Future[V]]] = {}  #: key → (when it ended or None, the read)

    async def get(self, key: K) -> V:
        now = self._clock()
        for old in [k for k, (ended, _) in self._reads.items() if ended is not None and now - ended >= self.max_age]:
            del self._reads[old]
        held = self._reads.get(key)
        if held is None:
            read = asyncio.ensure_future(self._read(key))
            self._reads[key] = (None, read)
            read.add_done_callback(lambda done, key=key: self._ended(key, done))  # type: ignore[misc]
        else:
            read = held[1]
        return await asyncio.shield(read)

    def _ended(self, key: K, read: asyncio.Future[V]) -> None:
        held = self._reads.get(key)
        if held is not None and held[1] is read:
            self._reads[key] = (self._clock(), read)
        if not read.cancelled():
            read.exception()  # looked at: an error nobody waited for any more is not "never retrieved"

    def __len__(self) -> int:
        return len(self._reads)


__all__ = ["RecentReads"]
