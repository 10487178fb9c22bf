"""A worker whose own heartbeat cannot be written stops taking work before the reaper takes it for dead.

The registry entry is the worker's lease on what it holds: when it expires (``registry.ttl`` after the last put
that succeeded) the reaper recovers the ads it announced, charging and handing back the one it was running
(:mod:`gamead_core.worker.reaper`). Puts can fail while the worker itself is well (JetStream's memory store,
where the registry bucket lives, at its limit: ``insufficient resources``; its own ``nats.max_pending_bytes``),
and ``gamead up`` then leaves a worker that answers its ``/metrics`` running (review27 finding F1): if it went on
pulling, the reaper would recover ads it is still analysing, and they would run twice.

So, one heartbeat interval before its entry can expire (``registry.ttl`` − ``registry.heartbeat_interval`` of
failed puts), the worker *fences* itself, as a holder of a lapsing lease does: it pulls nothing and hands its
buffered (never started) ads back at once, uncharged; analyses already running finish and write their outcomes
(the ads' bucket is not the registry's) unless the lease lapses first (:mod:`gamead_core.worker.lease`). The first
put that succeeds lifts the fence. Each change is logged once.
The worker asks before every pull, and a worker whose slots are all taken waits for a free one at most
:meth:`Fence.bound` (one heartbeat interval) between two asks: a busy worker on a NATS that answers nothing logged
nothing and kept its buffered ads until a slot freed (attack32a F10: "heartbeat not written for 83.0 s").
An analysis still running when the entry expires is recovered by the reaper like any dead worker's (an analysis
longer than one heartbeat interval, during such an outage); the worker then lets go of it, writing nothing
(:mod:`gamead_core.worker.lease`, stall38).
"""

from __future__ import annotations

import logging
import time

from gamead_core.registry.beat import BeatHealth

log = logging.getLogger(__name__)


class Fence:
    """The fence of one worker over its heartbeat's ``health``: :meth:`closed` says whether it may take work."""

    def __init__(self, health: BeatHealth, ttl: float, interval: float, worker_id: str = "") -> None:
        self.health = health
        #: seconds of failed puts after which the worker takes no work: one beat before its entry can expire
        self.after = max(interval, ttl - interval)
        self._ttl = ttl
        self._interval = interval
        self._worker_id = worker_id
        self._closed = False

    def closed(self, now: float | None = None) -> bool:
        """True while the heartbeat has not been written for :attr:`after` seconds (monotonic ``now``, read from
        the clock only while puts fail: the worker asks before every pull); logs when the fence closes and when it
        lifts. Pure but for that log line and the clock."""
        if not self.health.failing and not self._closed:
            return False
        now = time.monotonic() if now is None else now
        closed = self.health.unwritten_for(now) >= self.after
        if closed != self._closed:
            extra = {"worker_id": self._worker_id}
            if closed:
                log.warning("heartbeat not written for %.1f s (registry.ttl %.1f s): taking no work and handing "
                            "buffered ads back until it is, so the reaper, which will take this worker for dead, "
                            "never recovers an ad it still runs", self.health.unwritten_for(now), self._ttl,
                            extra=extra)
            else:
                log.info("heartbeat written again: taking work", extra=extra)
        self._closed = closed
        return closed

    def bound(self, wait: float | None) -> float:
        """The seconds a worker whose slots are all taken may wait for a free one (``wait``: its own bound, None:
        none) before it asks :meth:`closed` again: at most one heartbeat interval, so the fence closes within one
        interval of :attr:`after` however long its analyses run."""
        return self._interval if wait is None else min(wait, self._interval)


__all__ = ["Fence"]
