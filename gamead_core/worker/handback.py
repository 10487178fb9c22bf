"""Handing prefetched (never started, never charged) deliveries back to the queue, and the buffer's bound.

The worker's prefetch buffer (:mod:`gamead_core.worker.prefetch`) holds at most ``prefetch_depth(...)`` ads
(≤ ``worker.prefetch``) once a start step is done, whatever a pull brought: a long poll's ads come beyond what a
pull asked for (at most one per level and partition, each step), and a pull against the buffer's bar may bring
redeliveries whose old aging keys beat it. Before, the surplus stayed buffered: one worker held 301 ads with
4 slots (800 ms analyses: no slot stayed busy for the 1 s stall that hands a buffer back) while others idled.
Now the worst keys beyond the bound are ``nak``'ed at once (:func:`hand_back`), as on shutdown: redelivered
without delay to whichever worker asks, uncharged, so the aging order holds.

**Not the same ad again at every step** (attack31c F2): a ``nak``'ed ad goes at once to a waiting pull request, and
when no other worker has one that is the long poll this worker put back right after its pull: the next step took
the ad again and handed it back again (one ad 230 times in 31 s; 14,100 hand-backs over 39,000 ads). So
:class:`HandBacks` remembers what this worker handed back (:data:`REMEMBER` s): an ad handed back *again* is
``nak``'ed with a delay (:func:`repeat_delay`: 1 s, then doubling up to 4 s with the default
``worker.prefetch_wait``), for whichever worker asks once it passes; the first hand-back stays at once, so an idle
worker's waiting long poll still gets it at once, and the bound holds as before. The shutdown's and a fenced
worker's hand-backs (no more pulls: nothing comes back) are always at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.queue.pull_request import nak_now
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.held import HeldAds
from gamead_core.worker.keepalive import AckWaitKeepAlive
from gamead_core.worker.prefetch import MIN_BUFFER_STALL, PrefetchBuffer, buffer_stall
from gamead_core.worker.shield import Shield

log = logging.getLogger(__name__)

#: Ad ids a hand-back's log line names (``ad_ids``, the first ones; ``count`` says how many were handed back), so
#: an ad's story (``jq 'select(.ad_id == $id or (.ad_ids // [] | index($id)))'``) shows its extra delivery
IDS_LOGGED = 20


#: Seconds a worker remembers an ad it handed back (a later hand-back of it is delayed: :func:`repeat_delay`)
REMEMBER = 60.0
#: At most this many remembered hand-backs (the oldest forgotten first): a bound on the memory, whatever the flow
REMEMBERED = 10_000
#: The longest delay of a repeated hand-back, in units of the first (:func:`repeat_delay`)
MOST_DOUBLINGS = 4


def repeat_delay(times: int, prefetch_wait: float) -> float:
    """Seconds to delay the ``nak`` of an ad this worker hands back for the ``times``-th time lately (pure): 0 for
    the first; then ``buffer_stall(prefetch_wait)`` (1 s by default; 1 s for ``prefetch_wait: 0`` too), doubling
    with each repeat, at most :data:`MOST_DOUBLINGS` times it (attack31c F2: the same ad came back to this worker's
    own long poll and was handed back at every step)."""
    if times <= 1:
        return 0.0
    base = buffer_stall(prefetch_wait) or MIN_BUFFER_STALL
    return base * min(float(MOST_DOUBLINGS), 2.0 ** (times - 2))


class HandBacks:
    """A worker's hand-backs (:func:`hand_back`) with the memory of the ads it handed back lately; call it with the
    deliveries and the why. ``prefetch_wait`` is ``worker.prefetch_wait`` (s); the rest as :func:`hand_back`."""

    def __init__(self, prefetch_wait: float, *, held: HeldAds, keepalive: AckWaitKeepAlive, shielded: Shield,
                 stats: WorkerStats, worker_id: str, announce: Callable[[], Awaitable[None]]) -> None:
        self._wait = prefetch_wait
        self._parts = {"held": held, "keepalive": keepalive, "shielded": shielded, "stats": stats,
                       "worker_id": worker_id, "announce": announce}
        self._seen: dict[tuple[str, int], tuple[int, float]] = {}  #: (stream, stream seq) → (times, monotonic)

    def delays(self, msgs: list[Msg], now: float) -> list[float]:
        """The ``nak`` delay (s) of each of ``msgs`` handed back at ``now`` (monotonic s), each remembered."""
        seen = self._seen
        while seen and (len(seen) >= REMEMBERED or now - next(iter(seen.values()))[1] > REMEMBER):
            del seen[next(iter(seen))]  # insertion order is age order: each key is re-inserted when met
        out = []
        for msg in msgs:
            key = (msg.metadata.stream, msg.metadata.sequence.stream)
            times = seen.pop(key, (0, 0.0))[0] + 1
            seen[key] = (times, now)
            out.append(repeat_delay(times, self._wait))
        return out

    async def __call__(self, msgs: list[Msg], why: str, *, at_once: bool = False) -> None:
        """Hand ``msgs`` back (:func:`hand_back`); one this worker handed back lately is delayed, unless
        ``at_once`` (the worker pulls no more: shutdown, a fenced heartbeat)."""
        if not msgs:  # the common case, at every start step of the pull loop: nothing to remember or send
            return
        delays = [0.0] * len(msgs) if at_once else self.delays(msgs, time.monotonic())
        await hand_back(msgs, why, delays=delays, **self._parts)  # type: ignore[arg-type]


async def hand_back(msgs: list[Msg], why: str, *, held: HeldAds, keepalive: AckWaitKeepAlive, shielded: Shield,
                    stats: WorkerStats, worker_id: str, announce: Callable[[], Awaitable[None]],
                    delays: list[float] | None = None) -> None:
    """``nak`` each of ``msgs`` (buffered deliveries, never started) at once: no longer kept alive nor held,
    counted in ``stats.handed_back``, logged once with ``why``, the count and the first :data:`IDS_LOGGED` ad ids
    (``ad_ids``; attack29a F12: the line named none). A no-op for none.

    The held-ads announcement without them (``announce``) is put before the ``nak``s, on the same connection: a
    worker killed after its ``nak`` must not leave them announced as its own, or the reaper, taking them for
    waiting in a dead worker's hands, would claim and ``nak`` what another worker may be running already
    (review15; :mod:`gamead_core.worker.reaper`). ``delays`` (s, one per message; default none): a message with
    one is ``nak``'ed with that delay (:class:`HandBacks`), and the line says how many were."""
    if not msgs:
        return
    for msg in msgs:
        keepalive.release(msg)
        held.pop((msg.metadata.stream, msg.metadata.sequence.stream))
    await announce()
    ids = [(msg.headers or {}).get(names.HDR_AD_ID, "?") for msg in msgs[:IDS_LOGGED]]
    more = f" and {len(msgs) - len(ids)} more" if len(msgs) > len(ids) else ""
    later = [(m, d) for m, d in zip(msgs, delays or [0.0] * len(msgs), strict=True) if d > 0]
    again = (f"; {len(later)} handed back lately, redelivered in {max(d for _, d in later):g} s at most"
             if later else "")
    log.info("handing back %d prefetched ads (%s%s): %s%s", len(msgs), why, again, " ".join(ids), more,
             extra={"worker_id": worker_id, "count": len(msgs), "ad_ids": ids, "delayed": len(later)})
    stats.handed_back += await nak_now([m for m, d in zip(msgs, delays or [0.0] * len(msgs), strict=True) if d <= 0],
                                       shielded)
    if later:
        sent = await asyncio.gather(*(shielded(m.nak(delay=d)) for m, d in later), return_exceptions=True)
        stats.handed_back += sum(1 for r in sent if not isinstance(r, BaseException))


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
