"""Pulling ads with priority and aging, for the worker's free slots and its prefetch buffer.

JetStream cannot order messages by priority, so the worker decides: it keeps a short-lived view of each
level (``consumer_info`` + a look at its oldest messages), asks :func:`gamead_core.queue.aging.pull_order`
which level to serve, and pulls from that level's durable consumer with a ``no_wait`` request (answered at
once, unlike ``fetch``), for several ads at once when it has a backlog (``worker.prefetch``); a worker whose
buffer fills its free slots asks only for ads that beat the buffer's best (``pull(bar=…)``).

**Idle workers cost nothing** (issue 14.1). A worker whose fresh look found nothing waiting keeps one
long-poll pull request per level at the server (``batch: 1``, ``expires: queue.idle_wait``; JetStream pull
requests, ADR-13) and sleeps. An arriving ad (or a redelivery coming due) is handed by the server to *one*
waiting request, so it wakes one worker, with the ad itself: no body is copied to every worker and nothing
is read to find it. That worker runs it and, if the delivery's metadata says nothing else waits in its level
(``num_pending == 0``), goes back to sleep without reading the queue heads ("quiet": every level is being
watched, so nothing can wait unseen). If more wait behind it in that one level, it pulls that level directly
after putting back the other levels' long polls, still without reading a head; several such levels (or a pull
against the prefetch buffer's best) take the ordered, aging-aware path below (:mod:`.long_poll`). A busy worker
keeps an ad its long poll was answered with (at most one per level) for its next free slot. The heads are
read again at least every ``queue.idle_wait`` seconds.

Two kinds of ads wait in a level, and the view sees both:

* **new** ads: ``num_pending`` and the age of the next undelivered message (``get_msg``);
* **due redeliveries**: a retry whose backoff has passed, an ad handed back by a worker that stopped or
  died. JetStream does not say when a ``nak``'ed message is due, and probing by pulling would spend a
  delivery, so the view reads the level's oldest *unacknowledged* messages (from the consumer's ack floor,
  at most ``DUE_PROBE`` of them, skipping the worker's own; :mod:`gamead_core.queue.due`) and asks
  ``waiting_since`` (the worker reads the ad's record: its ``retryAt``) since when each has been due.
  Answers are cached: an ad in a worker's hands for ``BUSY_TTL``, a retry not yet due until it is, and a
  level is looked at no more than once per ``DUE_REFRESH``. A pull of the level then gets the due
  redelivery first (JetStream serves redeliveries before new messages), and its wait counts from when it
  became due: a retried ad keeps its place in the aging order.

Partitions (``queue.partitions``): each level is read, long-polled and pulled in each (:mod:`.partitions`); a level's
view is kept per partition and its pulls go to the most patient partition first (:mod:`.part_heads`).
A level that cannot be read (its consumer was deleted, its pull is refused) never blocks the others: it is
left out of the view and tried again with back-off, logged once when it fails and once when it recovers
(:mod:`gamead_core.queue.level_health`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Container, Iterator

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from gamead_core import clock, names
from gamead_core.config import QueueSettings
from gamead_core.errors import GameadError, error_text
from gamead_core.queue.aging import LevelHead, delivery_key, head_key, pull_order
from gamead_core.queue.depth import level_depths
from gamead_core.queue.due import DUE_PROBE, DueProbe, HandedBack, WaitingSince
from gamead_core.queue.level_health import LevelHealth
from gamead_core.queue.part_heads import after_pull, by_wait, merge_heads
from gamead_core.queue.partitions import partition_of_msg
from gamead_core.queue.long_poll import LongPolls
from gamead_core.queue.pull_request import pending_behind, pull_no_wait

log = logging.getLogger(__name__)


class AgingPuller:
    """Aging-aware, slot-bounded pulls across the per-level consumers of the work stream.

    ``waiting_since`` (optional) lets the view see due redeliveries (see the module doc); ``own`` returns
    the (stream, sequence) of each delivery this worker holds, which are never due; ``handed`` the worker's
    hand-backs (:class:`~gamead_core.queue.due.HandedBack`): no long poll where it had no room, its ads due;
    ``arrived()`` is called at each message an inbox takes (:class:`~gamead_core.queue.inbox.Inbox`).
    """

    def __init__(self, nc: NATS, js: JetStreamContext, qs: QueueSettings, *, waiting_since: WaitingSince | None = None,
                 own: Callable[[], Container[tuple[str, int]]] | None = None, handed: HandedBack | None = None,
                 arrived: Callable[[], None] | None = None) -> None:
        self._nc, self._js, self._qs = nc, js, qs
        self._parts = range(qs.partitions)  #: work-stream partitions (queue.partitions); the dicts: (level, partition)
        self._levels = LevelHealth()
        self.polls = LongPolls(nc, qs.idle_wait, self._parts, self._levels.readable,  #: inboxes and long polls
                               full=handed.full if handed is not None else None, arrived=arrived)  # (.worker.alone)
        self._parts_seen: dict[int, dict[int, LevelHead]] = {}  #: level → partition → its view (:mod:`.part_heads`)
        self._heads: dict[int, LevelHead] = {}  #: level → its view, merged from its partitions'
        self._heads_at = 0.0
        self._read_at: dict[int, float] = {}  #: level → epoch s of its head's last read (its wait counts from it)
        self._mono_read: dict[int, float] = {}  #: level → monotonic s of the same read (how fresh the view is)
        self._bar_at = 0.0  #: monotonic; the last look for ads beating the prefetch buffer (pull with a bar)
        self._swept_at = 0.0
        self._due = waiting_since and DueProbe(js, waiting_since, own or (lambda: ()), handed and handed.handed)

    async def start(self) -> None:
        await self.polls.start()

    async def stop(self, *, answering: bool = True, drain: float | None = None) -> None:
        """Let the live long polls end, unsubscribe, hand back at once the ads a long poll delivered that no pull
        took yet (``nak``: redelivered without delay); ``answering`` False: at once (:meth:`LongPolls.stop`)."""
        await self.polls.stop(answering=answering, drain=drain)

    # --- level health (gamead_core.queue.level_health) ---------------------------------------------
    def readable(self, level: int) -> bool:  # False while level is failing and its back-off has not passed
        return self._levels.readable(level)

    def failing_levels(self) -> list[int]:
        """The levels that cannot be read now, most urgent first."""
        return self._levels.failing_levels()

    # --- the view of the queue heads ----------------------------------------------------------------
    async def _level_head(self, level: int, now: float) -> LevelHead | None:
        if not self.readable(level):
            return None
        try:
            depths = await level_depths(self._js, level, now, self._parts)
        except nats.js.errors.NotFoundError:
            self._levels.failed(level, f"consumer {'/'.join(names.level_consumer(level, p) for p in self._parts)} "
                                "not found")
            return None
        except (nats.errors.Error, asyncio.TimeoutError, GameadError, OSError) as exc:
            self._levels.failed(level, error_text(exc))
            return None
        self._levels.ok(level)
        parts: dict[int, LevelHead] = {}
        for p, dp in depths.items():  # each partition's view apart: a pull orders them by it (chaos48 F2)
            due, due_age = await self._due.count(level, dp, now, p) if self._due is not None and dp.ack_pending \
                else (0, 0.0)
            parts[p] = LevelHead(level, dp.pending, dp.oldest_age or 0.0, dp.ack_pending, due, due_age)
        self._parts_seen[level] = parts
        return merge_heads(level, parts.values())

    async def heads(self, *, fresh: bool = False) -> dict[int, LevelHead]:
        """Waiting ads and the longest wait per readable level, each level's reused for ``queue.head_cache_ms``
        (a level a pull with a bar read meanwhile is not read again; ``fresh``: every level is read)."""
        mono, ttl = time.monotonic(), self._qs.head_cache_ms / 1000
        if not fresh and self._heads_at and mono - self._heads_at < ttl:
            return self._heads
        if stale := [lvl for lvl in names.LEVELS if fresh or mono - self._mono_read.get(lvl, -ttl) >= ttl]:
            await self._read_heads(stale)
        self._heads_at = min(self._mono_read.get(lvl, mono) for lvl in names.LEVELS)  #: its oldest level's read
        return self._heads

    async def _read_heads(self, levels: tuple[int, ...] | list[int]) -> None:
        now, mono = clock.now(), time.monotonic()
        infos = await asyncio.gather(*(self._level_head(lvl, now) for lvl in levels))
        for level, head in zip(levels, infos):
            self._read_at[level], self._mono_read[level] = now, mono
            if head is None:
                self._heads.pop(level, None)
                self._parts_seen.pop(level, None)
            else:
                self._heads[level] = head

    # --- pulling -------------------------------------------------------------------------------------
    async def _pull_level(self, level: int, want: int) -> list[Msg]:
        """Up to ``want`` ads of ``level``, its partitions' most patient ad first (all when the view has none); each
        partition's view, and the level's merged from them, counts off what its pull took (:mod:`.part_heads`)."""
        parts = self._parts_seen.get(level)
        got: list[Msg] = []
        for p in by_wait(parts) if parts else self._parts:
            ask = want - len(got)
            inbox, reply = self.polls.inbox[(level, p)], self.polls.reply[(level, p)]
            msgs = await pull_no_wait(self._nc, inbox, reply, level=level, partition=p, want=ask, health=self._levels)
            if parts and p in parts:
                parts[p], taken_due = after_pull(parts[p], msgs, ask, self._read_at.get(level, 0.0))
                if self._due is not None:
                    self._due.taken(level, taken_due, drained=len(msgs) < ask, partition=p)
            got.extend(msgs)
            if len(got) >= want:
                break
        if parts and level in self._heads:
            self._heads[level] = merge_heads(level, parts.values())
        return got

    async def pull(self, free: int, *, bar: float | None = None) -> list[Msg]:
        """Up to ``free`` messages, best level first. Empty when nothing was found: then every level is
        long-polled (the long polls are the fresh look: an ad waiting now is handed to them at once).
        ``bar`` (an aging key, :func:`~gamead_core.queue.aging.due_key`: the worker's prefetch buffer's best):
        only levels whose most patient ad beats it are pulled (long polls' ads are returned whatever their key);
        an empty answer then says only that nothing beats it. Only levels where an ad due since their last read
        could beat ``bar`` are read again, every ``queue.head_cache_ms`` (``L`` read at ``t``: ``t+L·step < bar``)."""
        if free <= 0:
            return []
        polls = self.polls
        # Delivered already (the long polls bring ≤ 1 each): all of them, beyond ``free`` — the start step runs the
        # best by aging key and holds the rest (taking ``free`` in level order starved a P2 ad behind a P1 stream
        # past its aging bound). No reads. The long polls that brought them are put back now, not at the next empty
        # look (a more urgent ad arriving reached no one), as many as the room left allows (.poll_room). A level noted
        # with a backlog is pulled directly (no long poll): when more urgent than one of these, it is pulled too, so
        # the long polls' less urgent ads cannot keep it waiting. With no quiet spell (nothing says what waits
        # unseen), a more urgent noted backlog or level left without a long poll (``short`` of room: .poll_room) that
        # a spell older than an aging step cannot order blind, the view is asked for what beats them: before, they were
        # started as they were: a fresh P2 ad overtook a P1 backlog by its whole 2 steps (bench_aging.py, step 2 s).
        local = polls.take(free + len(polls.inbox))
        if local:
            await polls.place(skip=list(polls.backlog), room=None if bar is not None else free - len(local))
            quiet, step = time.monotonic() < polls.quiet_until, self._qs.aging_step
            hinted = min(polls.backlog, default=None)
            worst = max(names.level_of_subject(m.subject) for m in local) if quiet and (polls.short or hinted) else 0
            short = quiet and bool(polls.short) and (min(polls.short)[0] < worst or not polls.level_ordered(step))
            if not quiet or short or (hinted is not None and hinted[0] < worst):
                if quiet and not short and self._backlog_first(bar):
                    local.extend(await self._pull_backlog(free, room=free - len(local)))
                else:
                    noted, now = polls.loud(), clock.now()
                    best = min(delivery_key(m, now, step) for m in local)
                    local.extend(await self._pull_beating(free, best if bar is None else min(bar, best), noted))
            return local
        noted: Container[int] = ()  #: levels a long poll saw ads waiting in (the view of them is out of date)
        if time.monotonic() < polls.quiet_until:  # every level is long-polled: only a noted backlog waits
            if not polls.backlog:
                await polls.place(room=free)  # a long poll that brought an ad is put back (no-op while all wait)
                return []
            if self._backlog_first(bar):
                got = await self._pull_backlog(free)
                if got or polls.quiet_until:
                    return got
            noted = polls.loud()  # behind a bar, two partitions of a level, a long spell, a failed pull: the view
        if bar is not None:
            return await self._pull_beating(free, bar, noted)
        got = await self._pull_ordered(free, await self.heads())
        if len(got) < free:
            got.extend(await self._sweep(free - len(got)))
        if not got:  # the view has nothing: the long polls look again (an ad waiting now is handed to them at
            polls.quiet(since=self._heads_at)  # once, with how many wait behind it) and watch every level from
            self._heads_at, self._mono_read = 0.0, {}  # now on (no level's read is fresh: what waits came after
            await polls.place(room=free)  # the view's oldest read, the spell's start; for its room: .poll_room)
        return got

    async def _pull_beating(self, free: int, bar: float, noted: Container[int] = ()) -> list[Msg]:
        """Up to ``free`` ads whose aging key beats ``bar`` (epoch s), by the view: a level is read again where an
        ad due since its last read could beat ``bar``, at most every ``queue.head_cache_ms`` — at once if it is
        in ``noted`` (a long poll saw ads waiting there: a cached view of it that says "empty" let a P2 ad
        overtake a P1 backlog, ``bench_aging.py``)."""
        mono = time.monotonic()
        step = self._qs.aging_step
        cached = mono - max(self._heads_at, self._bar_at) < self._qs.head_cache_ms / 1000
        stale = [lvl for lvl in names.LEVELS if (not cached or lvl in noted)
                 and self._read_at.get(lvl, 0.0) + lvl * step < bar]
        if stale:
            await self._read_heads(stale)
        if not cached:
            self._bar_at = mono
        return await self._pull_ordered(free, self._heads, bar)

    def _backlog_first(self, bar: float | None) -> bool:
        """True when the noted backlogs may be pulled most urgent level first with no head read: no buffer's bar
        to compare with, and the levels are in aging order (:meth:`LongPolls.level_ordered`)."""
        return bar is None and self.polls.level_ordered(self._qs.aging_step)

    async def _pull_backlog(self, free: int, room: int | None = None) -> list[Msg]:
        """Up to ``free`` ads of the levels a long poll noted a backlog in, most urgent level first, while every
        other level is long-polled (:mod:`gamead_core.queue.long_poll`, "Backlog hints"): their long polls are put
        back first, so an ad waiting elsewhere is delivered to us ahead of this pull's answer and returned with it,
        beyond ``free`` if need be (at most one per long poll: the worker's start step holds them all and starts
        the best by aging key; ``room`` < 0: none is put back, .poll_room). Ends the quiet spell when a level fails."""
        polls = self.polls
        hinted = sorted(polls.backlog)  # (level, partition): most urgent level first
        #: the most urgent level left unwatched for a while (its long poll brought an ad with nothing behind it):
        #: what arrived there meanwhile is unseen, so no noted level after it is pulled blind
        blind = min((k[0] for k in polls.inbox if k not in polls.backlog and not polls.watched(k)
                     and self.readable(k[0])), default=None)
        await polls.place(skip=hinted, room=room)  # their own long polls would take the next ads these pulls are for
        got: list[Msg] = []
        for key in hinted:
            level, p = key
            want = free - len(got)
            if want <= 0:
                break
            if blind is not None and level > blind:
                if not got:
                    polls.loud()  # the ordered look sees the unwatched level
                break
            if not self.readable(level):
                polls.loud()
                return got
            msgs = await pull_no_wait(self._nc, polls.inbox[key], polls.reply[key], level=level, partition=p,
                                      want=want, health=self._levels)
            if not self.readable(level):  # the pull failed: the ordered path looks and says
                polls.loud()
            else:
                more = pending_behind(msgs) if len(msgs) == want else 0  # a short answer: drained
                if more:
                    polls.backlog[key] = more
                else:
                    polls.backlog.pop(key, None)
            if self._due is not None:
                for msg in msgs:
                    self._due.forget(msg.metadata.sequence.stream, p)
            got.extend(msgs)
        return polls.take(len(got) + len(polls.inbox), got)  # and what the long polls just brought (≤ 1 each)

    async def _pull_ordered(self, free: int, heads: dict[int, LevelHead], bar: float | None = None) -> list[Msg]:
        got: list[Msg] = []
        step = self._qs.aging_step
        ahead = heads if bar is None else {  # what waits behind the buffer is left out before ordering (levels
            lvl: h for lvl, h in heads.items() if head_key(h, self._read_at.get(lvl, 0.0), step) < bar}  # read apart)
        for level in pull_order(ahead, step):
            want = free - len(got)
            msgs = await self._pull_level(level, want)
            got.extend(msgs)  # (the level's view counted them off: _pull_level)
            if self._due is not None:
                for msg in msgs:
                    self._due.forget(msg.metadata.sequence.stream, partition_of_msg(msg))
            if len(got) >= free:
                break
        return got

    async def _sweep(self, free: int) -> list[Msg]:
        """Collect redeliveries the view did not see as due (e.g. a lease that expired) from levels with no
        new ads: levels with unacknowledged ads are asked, most urgent first, at most once per
        ``queue.idle_poll``, and only with slots no ordered pull filled."""
        now = time.monotonic()
        if now - self._swept_at < self._qs.idle_poll:
            return []
        self._swept_at = now
        got: list[Msg] = []
        for level in names.LEVELS:
            head = self._heads.get(level)
            if head is None or head.pending or not head.ack_pending or not self.readable(level):
                continue
            got.extend(await self._pull_level(level, free - len(got)))
            if len(got) >= free:
                break
        return got

    @property
    def published(self) -> int:  # how many ads long polls have delivered to us; pass it to wait_for_work
        return self.polls.published

    def take_delivered(self) -> list[Msg]:
        """Every ad delivered to us (long polls, late answers) that no pull took yet, status answers dropped: for a
        worker with no free slot to hold at once (:mod:`gamead_core.queue.inbox`)."""
        return self.polls.take(1 << 62)  # every one: no count of them first

    def unstarted(self) -> Iterator[Msg]:  # ads its long polls brought, no pull took, ack_wait not past: LongPolls
        return self.polls.unstarted(self._qs.ack_wait)

    @property
    def rung_at(self) -> float | None:  # when the oldest ad a long poll brought that no pull took yet came
        return self.polls.rung_at

    async def wait_for_work(self, since: int, timeout: float, *, idle: bool = True) -> None:
        """Sleep until a long poll delivers an ad after ``since`` was read, or ``timeout`` passes; the long polls
        are (re)placed first, so reading ``since`` before a pull makes it race-free (:meth:`LongPolls.wait`, idle)."""
        await self.polls.wait(since, timeout, idle=idle)


__all__ = ["AgingPuller", "DUE_PROBE", "WaitingSince"]
