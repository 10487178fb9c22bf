"""Handing prefetched (never started, never charged) deliveries back to the queue, and the buffer's bound.

The worker's prefetch buffer (:mod:`gamead_core.worker.prefetch`) holds at most ``prefetch_depth(...)`` ads
(≤ ``worker.prefetch``) once a start step is done, whatever a pull brought: a long poll's ads come beyond what a
pull asked for (at most one per level and partition, each step), and a pull against the buffer's bar may bring
redeliveries whose old aging keys beat it. Before, the surplus stayed buffered: one worker held 301 ads with
4 slots (800 ms analyses: no slot stayed busy for the 1 s stall that hands a buffer back) while others idled.
Now the worst keys beyond the bound are ``nak``'ed at once (:func:`hand_back`), as on shutdown: redelivered
without delay to whichever worker asks, uncharged, so the aging order holds.

**Not the same ad again at every step** (attack31c F2, attack32b F1): a ``nak``'ed ad goes at once to a waiting
pull request, and when no other worker has one that was the long poll this worker put back right after its pull:
the next step took the ad again and handed it back again (one ad 230 times in 31 s). Session 31 delayed a repeated
``nak`` (1 s doubling to 4 s), which broke the aging order: whichever delay ended first won, and a lone worker
idled up to 4 s with due ads in its own delays (attack32b F1). Now every ``nak`` is at once, and the churn is cut
where it came from: a worker with no room does not ask for more where it just had none. :class:`HandBacks`
notes the (level, partition) of each ad handed back for want of room (:attr:`HandBacks.full`): the puller puts no
long poll back there (:meth:`~gamead_core.queue.long_poll.LongPolls.place`) until the worker has room again (a
start step that left room for one ad from each long poll in free slots and below the buffer's bound:
:func:`room_after_step`, :meth:`HandBacks.after_step`; a wait for work with every slot free), so a handed-back ad
goes to an idle worker's long poll, or waits in the queue. (A slot left free or a buffer one below its bound was
room before: with two busy workers one ad went from one's long poll to the other's, 14-18 hand-backs in 6 s,
attack37 F4.) It remembers the ads it handed back
(:meth:`HandBacks.handed`), and its view of the queue counts them as due from their first publish
(:class:`~gamead_core.queue.due.DueProbe`): when a slot frees, the worker pulls the best due ad in aging order,
a handed-back one included, without taking it back first. The shutdown's and a fenced worker's hand-backs (no
more pulls) note nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.queue.partitions import partition_of_msg
from gamead_core.queue.pull_request import nak_now
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.handed import RecentHandBacks
from gamead_core.worker.held import HeldAds
from gamead_core.worker.keepalive import AckWaitKeepAlive
from gamead_core.worker.prefetch import PrefetchBuffer
from gamead_core.worker.shield import Shield

log = logging.getLogger(__name__)

#: Ad ids a hand-back's log line names (``ad_ids``, the first ones; ``count`` says how many were handed back), so
#: an ad's story (``jq 'select(.ad_id == $id or (.ad_ids // [] | index($id)))'``) shows its extra delivery
IDS_LOGGED = 20


#: Seconds a worker remembers an ad it handed back (its view counts it due from its first publish meanwhile)
REMEMBER = 3600.0
#: At most this many remembered hand-backs (the oldest forgotten first): a bound on the memory, whatever the flow
REMEMBERED = 10_000


class HandBacks:
    """A worker's hand-backs (:func:`hand_back`, every ``nak`` at once), with the levels it had no room for and the
    ads it handed back; call it with the deliveries and the why. ``partitions``: ``queue.partitions`` (the puller places
    a long poll per level and partition). The rest as :func:`hand_back`."""

    def __init__(self, *, held: HeldAds, keepalive: AckWaitKeepAlive, shielded: Shield,
                 stats: WorkerStats, worker_id: str, announce: Callable[[], Awaitable[None]],
                 partitions: int = 1) -> None:
        self._long_polls = len(names.LEVELS) * partitions  #: the puller's long polls, all placed (one per level)
        #: every delivery handed back lately, whatever the why: the entry's ``handedBack`` (.handed)
        self.recent = RecentHandBacks()
        self._parts = {"held": held, "keepalive": keepalive, "shielded": shielded, "stats": stats,
                       "worker_id": worker_id, "announce": announce}
        #: (level, partition) this worker handed ads back from for want of room: no long poll is put back there
        #: until it has room (the puller's LongPolls shares this set and empties it on an idle wait)
        self.full: set[tuple[int, int]] = set()
        self._back: dict[tuple[str, int], float] = {}  #: (stream, stream seq) → monotonic s of its hand-back

    def handed(self) -> dict[tuple[str, int], float]:
        """The (stream, stream seq) of the ads this worker handed back for want of room lately (:data:`REMEMBER`
        s, at most :data:`REMEMBERED`): its view counts each one not held again as due (a ``Container``)."""
        return self._back

    def note(self, msgs: list[Msg], now: float) -> None:
        """Remember ``msgs``, handed back at ``now`` (monotonic s) for want of room, and their (level, partition)."""
        back = self._back
        while back and (len(back) >= REMEMBERED or now - next(iter(back.values())) > REMEMBER):
            del back[next(iter(back))]  # insertion order is age order: each key is re-inserted when met
        for msg in msgs:
            key = (msg.metadata.stream, msg.metadata.sequence.stream)
            back.pop(key, None)
            back[key] = now
            self.full.add((level_of(msg), partition_of_msg(msg)))

    def after_step(self, handed_back: list[Msg], *, free: int, started: int, depth: int, buffered: int) -> None:
        """A start step ended: ``free`` slots, ``started`` ads started, ``buffered`` kept under the buffer's bound
        ``depth``, ``handed_back`` handed back for want of room. Room (:func:`room_after_step`) and nothing handed
        back: long polls go back everywhere again."""
        if not handed_back and room_after_step(free=free, started=started, depth=depth, buffered=buffered,
                                               long_polls=self._long_polls):
            self.full.clear()

    async def __call__(self, msgs: list[Msg], why: str, *, at_once: bool = False) -> None:
        """Hand ``msgs`` back (:func:`hand_back`, at once); unless ``at_once`` (the worker pulls no more: shutdown,
        a fenced heartbeat) they are remembered as handed back for want of room (:meth:`note`)."""
        if not msgs:  # the common case, at every start step of the pull loop: nothing to remember or send
            return
        now = time.monotonic()
        if not at_once:
            self.note(msgs, now)
        self.recent.note(msgs, now)  # announced by hand_back's announcement, before the naks
        await hand_back(msgs, why, **self._parts)  # type: ignore[arg-type]


def level_of(msg: Msg) -> int:
    """The priority level a work message ``msg`` waits in (the least urgent for a subject that names none)."""
    try:
        return names.level_of_subject(msg.subject)
    except (ValueError, IndexError):
        return names.LEVELS[-1]


async def hand_back(msgs: list[Msg], why: str, *, held: HeldAds, keepalive: AckWaitKeepAlive, shielded: Shield,
                    stats: WorkerStats, worker_id: str, announce: Callable[[], Awaitable[None]]) -> None:
    """``nak`` each of ``msgs`` (buffered deliveries, never started) at once: no longer kept alive nor held,
    counted in ``stats.handed_back``, logged once with ``why``, the count and the first :data:`IDS_LOGGED` ad ids
    (``ad_ids``; attack29a F12: the line named none). A no-op for none.

    The held-ads announcement without them (``announce``) is put before the ``nak``s, on the same connection: a
    worker killed after its ``nak`` must not leave them announced as its own, or the reaper, taking them for
    waiting in a dead worker's hands, would claim and ``nak`` what another worker may be running already
    (review15; :mod:`gamead_core.worker.reaper`). :class:`HandBacks` has noted them handed back by then (the entry's
    ``handedBack``, :mod:`gamead_core.worker.handed`): ack pending until a pull takes them again, not unheld."""
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


def room_after_step(*, free: int, started: int, depth: int, buffered: int, long_polls: int) -> bool:
    """Whether a start step left the worker room for what its long polls bring (pure): one ad from each of its
    ``long_polls`` (levels × partitions) in the slots it left free (``free`` less ``started``) and below its
    buffer's bound (``depth`` less ``buffered``). Only then do the levels it
    handed ads back from get their long polls back (:meth:`HandBacks.after_step`).

    Before (attack37 F4), a slot left free or a buffer below its bound by one ad counted as room: with 2 workers at
    their capacity (150 ms analyses, depth 1) each one's levels came back almost every step, the five long polls
    brought up to five ads for one place, and the same P5 ad went from one worker's long poll to the other's and back,
    handed back 14-18 times in 6 s."""
    return free - started + depth - buffered >= long_polls


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
