"""Handing prefetched (never started, never charged) deliveries back to the queue, and the buffer's bound.

The worker's prefetch buffer (:mod:`gamead_core.worker.prefetch`) holds at most ``prefetch_depth(...)`` ads
(≤ ``worker.prefetch``) once a start step is done, whatever a pull brought: a long poll's ads come beyond what a
pull asked for (at most one per level and partition, each step), and a pull against the buffer's bar may bring
redeliveries whose old aging keys beat it. Before, the surplus stayed buffered: one worker held 301 ads with
4 slots (800 ms analyses: no slot stayed busy for the 1 s stall that hands a buffer back) while others idled.
Now the worst keys beyond the bound are ``nak``'ed at once (:func:`hand_back`), as on shutdown: redelivered
without delay to whichever worker asks, uncharged, so the aging order holds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.queue.pull_request import nak_now
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.held import HeldAds
from gamead_core.worker.keepalive import AckWaitKeepAlive
from gamead_core.worker.prefetch import PrefetchBuffer
from gamead_core.worker.shield import Shield

log = logging.getLogger(__name__)

#: Ad ids a hand-back's log line names (``ad_ids``, the first ones; ``count`` says how many were handed back), so
#: an ad's story (``jq 'select(.ad_id == $id or (.ad_ids // [] | index($id)))'``) shows its extra delivery
IDS_LOGGED = 20


async def hand_back(msgs: list[Msg], why: str, *, held: HeldAds, keepalive: AckWaitKeepAlive, shielded: Shield,
                    stats: WorkerStats, worker_id: str, announce: Callable[[], Awaitable[None]]) -> None:
    """``nak`` each of ``msgs`` (buffered deliveries, never started) at once: no longer kept alive nor held,
    counted in ``stats.handed_back``, logged once with ``why``, the count and the first :data:`IDS_LOGGED` ad ids
    (``ad_ids``; attack29a F12: the line named none). A no-op for none.

    The held-ads announcement without them (``announce``) is put before the ``nak``s, on the same connection: a
    worker killed after its ``nak`` must not leave them announced as its own, or the reaper, taking them for
    waiting in a dead worker's hands, would claim and ``nak`` what another worker may be running already
    (review15; :mod:`gamead_core.worker.reaper`)."""
    if not msgs:
        return
    for msg in msgs:
        keepalive.release(msg)
        held.pop((msg.metadata.stream, msg.metadata.sequence.stream))
    await announce()
    ids = [(msg.headers or {}).get(names.HDR_AD_ID, "?") for msg in msgs[:IDS_LOGGED]]
    more = f" and {len(msgs) - len(ids)} more" if len(msgs) > len(ids) else ""
    log.info("handing back %d prefetched ads (%s): %s%s", len(msgs), why, " ".join(ids), more,
             extra={"worker_id": worker_id, "count": len(msgs), "ad_ids": ids})
    stats.handed_back += await nak_now(msgs, shielded)


def bound_broken(buffered: int, running: int, *, depth: int, concurrency: int) -> str | None:
    """The worker's invariant after a start step (pure): at most ``depth`` (``prefetch_depth(...)``, ≤
    ``worker.prefetch``) ads ``buffered`` and at most ``concurrency`` analyses ``running`` (``inFlight``). None
    when it holds, else what broke (the worker logs it as an error: a bug, not a state to live with)."""
    if buffered > max(0, depth):
        return f"{buffered} ads buffered beyond the bound of {depth}"
    if running > concurrency:
        return f"{running} analyses running in {concurrency} slots"
    return None


def over_bound(buffer: PrefetchBuffer, bound: int) -> list[Msg]:
    """Take from ``buffer`` its worst deliveries beyond ``bound`` ads (none when it holds no more)."""
    return buffer.take_worst(len(buffer) - max(0, bound))
