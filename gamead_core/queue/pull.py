"""Pulling ads with priority and aging, never more than the worker has free slots.

JetStream cannot order messages by priority, so the worker decides: it keeps a short-lived view of each
level's backlog and the age of its oldest ad (``consumer_info`` + one ``get_msg``), asks
:func:`gamead_core.queue.aging.pull_order` which level to serve, and pulls from that level's durable
consumer with a ``no_wait`` request (answered at once, unlike ``fetch``). A plain NATS subscription to the
level subjects wakes an idle worker the moment an ad is published.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

import nats.errors
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.config import QueueSettings
from gamead_core.queue.aging import LevelHead, pull_order
from gamead_core.queue.depth import level_depth

log = logging.getLogger(__name__)

_STATUS = "Status"
_PULL_TIMEOUT = 1.0


class AgingPuller:
    """Aging-aware, slot-bounded pulls across the per-level consumers of the work stream."""

    def __init__(self, nc: NATS, js: JetStreamContext, qs: QueueSettings) -> None:
        self._nc = nc
        self._js = js
        self._qs = qs
        self._inbox: dict[int, asyncio.Queue[Msg]] = {lvl: asyncio.Queue() for lvl in names.LEVELS}
        self._reply: dict[int, str] = {}
        self._subs: list[Subscription] = []
        self._wake = asyncio.Event()
        self._published = 0
        self._heads: dict[int, LevelHead] = {}
        self._heads_at = 0.0
        self._swept_at = 0.0

    async def start(self) -> None:
        for level in names.LEVELS:
            inbox = self._nc.new_inbox()
            queue = self._inbox[level]

            async def deliver(msg: Msg, queue: asyncio.Queue[Msg] = queue) -> None:
                queue.put_nowait(msg)

            self._subs.append(await self._nc.subscribe(inbox, cb=deliver))
            self._reply[level] = inbox
        self._subs.append(await self._nc.subscribe(names.ADS_SUBJECT_WILDCARD, cb=self._on_publish))

    async def stop(self) -> None:
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except nats.errors.Error:
                pass
        self._subs.clear()

    async def _on_publish(self, msg: Msg) -> None:
        """An ad was just published: wake an idle worker; a level thought empty is empty no more."""
        self._published += 1
        self._wake.set()
        level = names.level_of_subject(msg.subject)
        head = self._heads.get(level)
        if head is None:
            self._heads_at = 0.0
        elif head.pending == 0:  # count it in our view rather than asking the server again
            self._heads[level] = replace(head, pending=1, head_age=0.0)

    # --- the view of the queue heads ----------------------------------------------------------------
    async def _level_head(self, level: int, now: float) -> LevelHead:
        d = await level_depth(self._js, level, now)
        return LevelHead(level, d.waiting, d.oldest_age or 0.0, d.in_flight)

    async def heads(self, *, fresh: bool = False) -> dict[int, LevelHead]:
        """Backlog and head age per level, reused for ``queue.head_cache_ms``."""
        mono = time.monotonic()
        if not fresh and self._heads and mono - self._heads_at < self._qs.head_cache_ms / 1000:
            return self._heads
        now = time.time()
        infos = await asyncio.gather(*(self._level_head(lvl, now) for lvl in names.LEVELS))
        self._heads = {h.level: h for h in infos}
        self._heads_at = mono
        return self._heads

    # --- pulling -------------------------------------------------------------------------------------
    async def _pull_level(self, level: int, want: int) -> list[Msg]:
        queue = self._inbox[level]
        got: list[Msg] = []
        while not queue.empty() and len(got) < want:  # late arrivals of an earlier, timed-out request
            msg = queue.get_nowait()
            if not (msg.headers and msg.headers.get(_STATUS)):
                got.append(msg)
        if len(got) == want:
            return got
        request = orjson.dumps({"batch": want - len(got), "no_wait": True})
        await self._nc.publish(
            names.pull_next_subject(names.ADS_STREAM, names.level_consumer(level)),
            request,
            reply=self._reply[level],
        )
        deadline = time.monotonic() + _PULL_TIMEOUT
        while len(got) < want:
            try:
                msg = await asyncio.wait_for(queue.get(), timeout=max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                log.warning("pull from priority %d timed out", level)
                break
            status = msg.headers.get(_STATUS) if msg.headers else None
            if status:
                if status not in ("404", "408"):
                    log.warning("pull from priority %d answered %s %s", level, status,
                                msg.headers.get("Description", "") if msg.headers else "")
                break
            got.append(msg)
        return got

    async def pull(self, free: int) -> list[Msg]:
        """Up to ``free`` messages, best level first. Empty only when a fresh look found every level empty."""
        if free <= 0:
            return []
        cached = bool(self._heads) and time.monotonic() - self._heads_at < self._qs.head_cache_ms / 1000
        got = await self._pull_ordered(free, await self.heads())
        if not got and cached:  # the cached view may be behind: look again before calling the queue empty
            got = await self._pull_ordered(free, await self.heads(fresh=True))
        if len(got) < free:
            got.extend(await self._sweep(free - len(got)))
        if not got:
            self._heads_at = 0.0
        return got

    async def _pull_ordered(self, free: int, heads: dict[int, LevelHead]) -> list[Msg]:
        got: list[Msg] = []
        for level in pull_order(heads, self._qs.aging_step):
            want = free - len(got)
            msgs = await self._pull_level(level, want)
            got.extend(msgs)
            head = self._heads.get(level)
            if head is not None:  # a short answer means the level is drained
                remaining = head.pending - len(msgs) if len(msgs) == want else 0
                self._heads[level] = replace(head, pending=max(0, remaining))
            if len(got) >= free:
                break
        return got

    async def _sweep(self, free: int) -> list[Msg]:
        """Collect redeliveries (timed-out or nak'ed ads) from levels with no new ads.

        ``num_pending`` counts only never-delivered ads; an ad whose lease expired comes back only through a
        pull on its level. Levels with unacknowledged ads are asked, most urgent first, at most once per
        ``queue.idle_poll``.
        """
        now = time.monotonic()
        if now - self._swept_at < self._qs.idle_poll:
            return []
        self._swept_at = now
        got: list[Msg] = []
        for level in names.LEVELS:
            head = self._heads.get(level)
            if head is None or head.pending or not head.unacked:
                continue
            got.extend(await self._pull_level(level, free - len(got)))
            if len(got) >= free:
                break
        return got

    @property
    def published(self) -> int:
        """How many ads this worker has seen published; pass it to :meth:`wait_for_work`."""
        return self._published

    async def wait_for_work(self, since: int, timeout: float) -> None:
        """Sleep until an ad is published after ``since`` was read, or ``timeout`` passes (delayed
        redeliveries have no signal). Reading ``since`` before a pull makes the wake-up race-free."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._published == since:
            self._wake.clear()
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except asyncio.TimeoutError:
                break
        self._heads_at = 0.0
