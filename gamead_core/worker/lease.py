"""A worker whose lease lapsed lets go of what a recovery took from it: the reaper has recovered it, or is about to.

The worker's registry entry is its lease on what it holds (:mod:`gamead_core.worker.fence`): each heartbeat put
that lands renews it for ``registry.ttl`` from a moment no earlier than the put's send. When none lands for that
long — the worker frozen (SIGSTOP, a suspended VM), its event loop starved, NATS stalled toward it — the entry
expires and the reaper (another worker) recovers its held ads: charged and handed back, or handed back as they are,
and another worker runs them. Before stall38 the worker, once running again, finished the analyses it was running
and wrote their outcomes: each of its ads ran twice (3 of 3 in ``tests/integration/test_fenced_twice.py``).

So the lease is taken as lapsed once ``registry.ttl`` − ``registry.heartbeat_interval`` / 2 has passed since the
send of the last put that landed (half a beat before the entry can expire), or when a put lands that long after the
one before it (the worker was frozen: it learns of the lapse only afterwards). :class:`Lease` counts the lapses; then

* the prefetched ads are let go without a ``nak`` (:func:`let_go`): the recovery hands them back as they are;
* the analyses running are in doubt (:class:`InDoubt`): each one's record is read every half heartbeat interval
  until it ends, and one a recovery took back (``lostIn`` naming this process and ``queued``, or a later
  delivery's claim: :func:`recovered`) is cancelled; its handler writes, acknowledges and hands back nothing;
* a delivery taken in hand before the lapse reads its record once more after its analysis (its ``epoch``,
  :meth:`Lease.lost`) and writes nothing if a recovery took it.

Only a recovery lets go of an analysis: a worker whose puts all fail because the registry's store refuses them
(every node's fail alike, and no reaper judges a death on a registry its own beats do not reach) finishes its
analyses and writes their outcomes, as before (``tests/integration/test_up_heartbeat_refused.py``).

A write that reaches NATS after a recovery (its worker frozen, or its link stalled, between the analysis and the
write: a batch start's ads, analysed in one turn, :mod:`.batch_start`, are never looked at) loses its
compare-and-set, and the fallback after it writes nothing over a record a recovery of this process took
(:func:`~gamead_core.worker.transitions.completing` with the worker's id, left39b: it wrote the stale outcome over
the recovery). What is left: an analysis in doubt runs on until the next look after its recovery and the other
worker may have started it by then (:data:`DOUBT_LOOK_EVERY` for ``registry.ttl`` after the lapse, then half a
heartbeat interval); a lapse seen early (puts failing, one landing before ``registry.ttl``) lets
the prefetched ads go with no recovery to hand them back: ``queue.ack_wait`` does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from gamead_core.errors import GameadError
from gamead_core.registry.beat import BeatHealth
from gamead_core.store.ads import AdStore
from gamead_core.worker.held import HeldAds
from gamead_core.worker.keepalive import AckWaitKeepAlive
from gamead_core.worker.prefetch import PrefetchBuffer
from gamead_core.worker.transitions import recovered  # here for its readers (handle)

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger


class Lease:
    """The lease of one worker over its heartbeat's ``health`` (``ttl``, ``interval``: ``registry.ttl`` and
    ``registry.heartbeat_interval``, seconds). :attr:`lapses` counts the lapses seen so far."""

    def __init__(self, health: BeatHealth, ttl: float, interval: float) -> None:
        self.health = health
        #: seconds after the last landed put's send at which the lease counts as lapsed
        self.within = max(interval, ttl - interval / 2)
        health.lapse_after = self.within
        self.ttl, self.interval = ttl, interval
        self.lapses = 0
        self._counted = float("-inf")  #: the ``sent_ok`` whose lapse was counted last
        self._told = 0  #: lapses :meth:`news` reported

    def check(self, now: float | None = None) -> int:
        """Count a lapse seen since the last check (monotonic ``now``) and return :attr:`lapses`. A lapse is named
        by the send of the put it followed, so the one seen on the clock and the gap a later put shows count once."""
        h = self.health
        sent = h.sent_ok
        if sent is None:  # no put landed yet: the entry is not ours to lose
            return self.lapses
        now = time.monotonic() if now is None else now
        start = sent if now - sent >= self.within else h.lapsed_from
        if start is not None and start > self._counted:
            self._counted = start
            self.lapses += 1
        return self.lapses

    def epoch(self) -> int:
        """The lapses so far, for a delivery taken in hand now (:meth:`lost`)."""
        return self.check()

    def lost(self, epoch: int) -> bool:
        """Whether a delivery taken in hand at ``epoch`` is no longer this worker's: a lapse since, or now."""
        return self.check() != epoch

    def news(self) -> bool:
        """True once for each lapse counted since the last call (the worker lets go of what it holds)."""
        lapses = self.check()
        if lapses == self._told:
            return False
        self._told = lapses
        return True

    def next_check(self) -> float:
        """Seconds until the lease may lapse on the clock, at most half a heartbeat interval (a gap seen only when
        a put lands is found within that), at least 50 ms."""
        sent = self.health.sent_ok
        left = self.interval / 2 if sent is None else self.within - (time.monotonic() - sent)
        return min(max(left, 0.05), self.interval / 2)

    def said(self, running: int, buffered: int, worker_id: str) -> None:
        """Log the lapse once: ``running`` analyses put in doubt, ``buffered`` ads let go."""
        now = time.monotonic()
        sent = self.health.sent_ok or now
        silent = now - sent if self._counted == sent else sent - self._counted  # on the clock, or a late put's gap
        log.warning("lease lapsed: no heartbeat of this worker landed for %.1f s (registry.ttl %.1f s): its registry "
                    "entry expires (or did) and the reaper recovers what it held: its %d running analyses are "
                    "stopped if recovered (their records are read until they end) and its %d prefetched ads let go, "
                    "none of those written, acknowledged or handed back",
                    silent, self.ttl, running, buffered, extra={"worker_id": worker_id})




class InDoubt:
    """The analyses running when the lease lapsed (``running``: the handler's, (stream, delivery) → (ad id,
    delivery, task)) in the worker ``worker_id``, looked at until they end: one whose record says it was
    :func:`recovered` is cancelled, its key put in ``taken`` first (its handler then writes, acknowledges and hands
    back nothing)."""

    def __init__(self, store: AdStore, running: dict[tuple[str, str], tuple[str, str, asyncio.Task[Any]]],
                 taken: set[tuple[str, str]], worker_id: str) -> None:
        self._store, self._running, self._taken, self._worker_id = store, running, taken, worker_id
        self.keys: set[tuple[str, str]] = set()

    def add_running(self) -> int:
        """Put every analysis running now in doubt; returns how many run."""
        self.keys.update(self._running)
        return len(self._running)

    async def look(self) -> bool:
        """Read the record of each analysis in doubt (one read each) and stop those recovered; True while some
        still run in doubt."""
        for key in list(self.keys):
            entry = self._running.get(key)
            if entry is None:  # ended (its outcome checked by its handler: AdHandler)
                self.keys.discard(key)
                continue
            ad_id, delivery, task = entry
            try:
                record = (await self._store.get(ad_id)).record
            except (GameadError, ValueError):  # unreadable now: looked at again next time
                continue
            if self._running.get(key) is not entry:  # ended meanwhile (its handler read the record itself)
                self.keys.discard(key)
            elif recovered(record, delivery, self._worker_id):
                self.keys.discard(key)
                self._taken.add(key)
                task.cancel()
                log.warning("ad %s: recovered from this worker while its lease had lapsed (the record: %s under "
                            "delivery %s): its analysis under %s is stopped, nothing written", ad_id,
                            record.status.value, record.delivery, delivery, extra={"ad_id": ad_id})
        return bool(self.keys)


#: seconds between two looks at the analyses in doubt during the first ``registry.ttl`` after a lapse was seen, when
#: a recovery lands if one does (the reaper judges an entry expired within that): left39b, a put landing again set
#: the looks back to half a heartbeat interval (:meth:`Lease.next_check`), so a recovery landing after the first
#: look let the analysis run on that long beside its new worker; afterwards, the lease's own cadence
DOUBT_LOOK_EVERY = 0.05


async def watch(lease: Lease, let_go: Callable[[], None], doubt: InDoubt) -> None:
    """For each lapse of ``lease`` (seen on the clock, or from a put that landed late): ``let_go()`` (the
    prefetched ads) and put the running analyses in ``doubt``, looked at every :data:`DOUBT_LOOK_EVERY` for
    ``registry.ttl``, then every :meth:`Lease.next_check`, until they end. Runs until cancelled."""
    looking, quick_until = False, 0.0
    while True:
        if lease.news():
            let_go()
            looking, quick_until = True, time.monotonic() + lease.ttl
        if looking:
            looking = await doubt.look()
        quick = looking and time.monotonic() < quick_until
        await asyncio.sleep(DOUBT_LOOK_EVERY if quick else lease.next_check())


def let_go(lease: Lease, worker_id: str, *, buffer: PrefetchBuffer, keepalive: AckWaitKeepAlive, held: HeldAds,
           doubt: InDoubt) -> None:
    """After a lapse: forget the prefetched ads in ``buffer`` (no ``nak``: the recovery hands them back, else
    ``queue.ack_wait`` does; their keep-alive stopped, out of ``held``) and put the running analyses in ``doubt``,
    said once (:meth:`Lease.said`)."""
    buffered = buffer.take_all()
    for msg in buffered:
        keepalive.release(msg)
        held.pop((msg.metadata.stream, msg.metadata.sequence.stream))
    lease.said(doubt.add_running(), len(buffered), worker_id)


__all__ = ["InDoubt", "Lease", "let_go", "recovered", "watch"]
