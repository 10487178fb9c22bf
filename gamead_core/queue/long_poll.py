"""The puller's inboxes and its idle long polls (:class:`LongPolls`), one of each per (level, partition), for the
:class:`~gamead_core.queue.pull.AgingPuller` (issue 14.1: idle workers cost nothing).

Each (level, partition) has two reply subjects: the **inbox** of its ``no_wait`` pulls and the **bell** of its long poll
(a JetStream pull request, ADR-13, with ``batch: 1`` and ``expires: queue.idle_wait``, waiting at the server until an ad
arrives; each its own reply subject under the bell: an answer ends only its own, :mod:`.polls_out`). An ad a long poll
is answered with goes into the level's inbox, for the next pull, and wakes the worker.

**Quiet**: after a fresh look found nothing waiting, every level is long-polled, so nothing can wait unseen: the puller
returns nothing without reading anything until ``queue.idle_wait`` has passed (:attr:`quiet_until`).

**Backlog hints** (issue 14, steady state): an ad a long poll brings says how many more wait behind it in its level
(``num_pending`` of its delivery). Such levels are noted in :attr:`backlog` and the puller pulls them directly, most
urgent first (``no_wait``, for the free slots), after putting back the long polls of every other level (:meth:`place`):
those levels are watched, so they hold nothing an ordered look would find, and an ad waiting there is sent to the long
poll at once, ahead of the pull's answer on the same connection. No queue head is read; level order is the aging order
there (:meth:`LongPolls.level_ordered` says when). A level whose long poll brought an ad with nothing behind it is
unwatched until its long poll is put back: no noted level less urgent than it is pulled that step (the ordered look
decides if nothing more urgent was noted). Before, any such ad ended the quiet spell and the next pull read every
level's head (5 ``consumer_info`` requests and a direct get), twice when it came back empty: at a steady 500 ads/s per
worker 0.36 ``consumer_info`` requests per ad, ~10 % of the worker's Python CPU.

**No room** (attack31c F2, attack32b F1): a worker that hands ads back for want of room (slots busy, its buffer at its
bound; :mod:`gamead_core.worker.handback`) puts no long poll back on their (level, partition) (:attr:`full`) until it
has room again (for one ad of each long poll, or every slot free at a :meth:`wait`; a wait with slots busy ends the
quiet spell instead, so the next pull reads those levels for its free slots only): else the ``nak``'ed ad came straight
back to it, or to another busy worker's long poll, and was handed back at every step. Such an ad goes to an idle
worker's long poll, or waits in the queue, where this worker's view counts it due from its first publish
(:mod:`gamead_core.queue.due`) and pulls it in aging order.

**The look when the view runs dry**: a busy worker pulls in the order of its view of the heads (re-read every
``queue.head_cache_ms``). When that view has nothing, the long polls are placed (:meth:`quiet`, :meth:`place`): that
*is* the fresh look, and a cheaper one than reading every level again (5 pull requests without an answer where nothing
waits, instead of 5 ``consumer_info`` requests and their ~1 kB answers).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from collections.abc import Callable, Iterator

import nats.errors
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from gamead_core import names
from gamead_core.queue.aging import level_order_is_aging_order
from gamead_core.queue.inbox import Inbox
from gamead_core.queue.inline_sub import subscribe_inline
from gamead_core.queue.poll_room import to_place
from gamead_core.queue.polls_out import PollsOut
from gamead_core.queue.pull_request import is_status, nak_now, take_delivered
from gamead_core.queue.read_end import unsubscribe_quietly

_STATUS = names.HDR_STATUS

#: (level, partition): a level's consumer in one work-stream partition
Key = tuple[int, int]
#: Longest wait (s) of a worker with slots busy and levels it does not watch (:meth:`LongPolls.wait`, idle False)
BUSY_LOOK = 0.05
#: Longest wait (s) of :meth:`LongPolls.stop` for the server to confirm it delivers no more (``nats.request_timeout``)
STOP_WAIT = 2.0
#: Seconds :meth:`LongPolls.stop` waits past a live long poll's ``expires`` for the server's answer (408) to it
POLL_MARGIN = 1.0


class LongPolls:
    """Inboxes, bells and long polls of every (level, partition) in ``partitions``; ``readable(level)`` says
    whether a level may be asked now (its :class:`~gamead_core.queue.level_health.LevelHealth`); ``arrived()`` is
    called at each message an inbox takes (the worker's wake-up: a full one holds it at once, crashflake50)."""

    def __init__(self, nc: NATS, idle_wait: float, partitions: range, readable: Callable[[int], bool], *,
                 full: set[Key] | None = None, arrived: Callable[[], None] | None = None) -> None:
        self._nc = nc
        #: (level, partition) the worker had no room for (it handed ads back from there, "No room" above): no long
        #: poll is put back there until the worker empties it (room again) or waits idle (:meth:`wait` empties it)
        self.full: set[Key] = set() if full is None else full
        #: (level, partition) the last placing left without a long poll for want of room (.poll_room): watched by the
        #: head reads, as :attr:`full`, once short for :data:`BUSY_LOOK` (since ``_short_at``, monotonic: a worker whose
        #: one ad runs for ms reads nothing); ``_room``: the room that placing was given (a busy wait places for it)
        self.short: set[Key] = set()
        self._short_at, self._room = 0.0, None
        self.idle_wait = idle_wait  #: seconds a long poll waits at the server (its life)
        self._readable = readable
        keys = [(lvl, p) for lvl in names.LEVELS for p in partitions]  #: level order, then partition
        self.inbox: dict[Key, Inbox] = {key: Inbox() for key in keys}
        for inbox in self.inbox.values():
            inbox.arrived = arrived
        self.reply: dict[Key, str] = {}  #: subject of each inbox (its no_wait pulls' reply subjects are under it)
        self._bell: dict[Key, str] = {}  #: subject under which each key's long polls have their reply (``<bell>.<n>``)
        #: the long-poll request's subject per key and its bytes (the same for all): built once, not per ad
        self._subject = {key: names.pull_next_subject(names.work_stream(key[1]), names.level_consumer(*key))
                         for key in keys}
        self._request = orjson.dumps({"batch": 1, "expires": int(idle_wait * 1e9)})
        self._out: PollsOut[Key] = PollsOut()  #: the long polls out at the server, by key and reply, with expiries
        self._asked = itertools.count(1)  #: numbers the long polls' reply subjects (``<bell>.<n>``)
        self.quiet_until = 0.0  #: monotonic; until then nothing waits that the long polls would not bring
        self._quiet_since = 0.0  #: monotonic; when the quiet spell began (nothing was waiting then)
        self.backlog: dict[Key, int] = {}  #: levels a long poll said hold more (module doc): key → how many more
        self.published = 0  #: ads (or trouble) the long polls brought; :meth:`wait` compares it
        #: monotonic time of the first of them not yet taken by a pull (None: none waits in an inbox)
        self.rung_at: float | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._subs: list[Subscription] = []
        self._ending = False  #: :meth:`stop` waits for the live long polls to end: every answer wakes it
        self._reconnects = self._reconnect_count()  #: the connection's reconnections when the long polls were placed

    async def start(self) -> None:
        """Subscribe every inbox and bell. Again after :meth:`stop` (a quiet worker resumed,
        :mod:`gamead_core.worker.quiet`): no long poll of before is live, no quiet spell nor backlog hint holds."""
        self._forget()
        self.rung_at = None
        for key, queue in self.inbox.items():
            inbox = self._nc.new_inbox()

            # both handled in nats-py's read loop: no task hop per ad (gamead_core.queue.inline_sub)
            self._subs.append(await subscribe_inline(self._nc, f"{inbox}.*", queue.put_nowait))
            self.reply[key] = inbox
            bell = self._nc.new_inbox()
            self._subs.append(await subscribe_inline(self._nc, f"{bell}.*", functools.partial(self._on_bell, key)))
            self._bell[key] = bell

    async def stop(self, wait: float = STOP_WAIT, *, answering: bool = True, drain: float | None = None) -> None:
        """Let every live long poll end (:meth:`_outlive`; ``drain``: the worker's ``worker.drain_timeout``, the wait's
        bound with ``wait`` more; None: not waited for), unsubscribe and hand back at once the ads a long poll or a
        pull delivered that no pull took yet (``nak``: redelivered without delay). ``answering`` False: NATS did not
        answer a ``PING`` (frozen): none of that is waited for, the subscriptions are dropped at once and what the
        server delivers meanwhile comes back after ``ack_wait``. Connected, each subscription is drained (nats-py's
        ``Subscription.drain``: the ``UNSUB``, then a ``PING`` whose ``PONG`` comes after every delivery the server made
        before it took the ``UNSUB``), for at most ``wait`` s, so those deliveries land in the inboxes and are handed
        back too. Before (chaos47 F1) the subscriptions were dropped here at once: an ad the server had just given a
        long poll or a pull arrived after, was thrown away by nats-py, and waited the consumer's ``ack_wait`` (30 s),
        though the stop was clean (tests/integration/test_stop_late_delivery.py)."""
        subs, self._subs = self._subs, []
        drained = False
        if subs and answering and self._nc.is_connected:
            if drain is not None:
                await self._outlive(time.monotonic() + drain + wait)
            try:
                ends = await asyncio.wait_for(asyncio.gather(*(s.drain() for s in subs), return_exceptions=True), wait)
                drained = not any(isinstance(end, BaseException) for end in ends)
            except asyncio.TimeoutError:
                pass  # NATS silent: what it delivers now comes back after ack_wait, as before
        if not drained:
            for sub in subs:
                await unsubscribe_quietly(sub)
        await self._nak_inboxes()
        self._out.clear()  # none can bring us an ad any more (a quiet worker's suspect ad waits for none: alone52)

    async def _nak_inboxes(self) -> None:
        """Hand back (``nak``) every ad the inboxes hold: never started, never charged."""
        left: list[Msg] = []
        for queue in self.inbox.values():
            take_delivered(queue, queue.qsize(), left)
        await nak_now(left)

    async def _outlive(self, until: float) -> None:
        """Keep the inboxes until each live long poll has been answered (an ad, or 408 at its ``expires``:
        ``queue.idle_wait`` at most, plus :data:`POLL_MARGIN`), NATS went away or ``until`` (monotonic: a stop must end
        within ``gamead up``'s grace, ``worker.drain_timeout`` + 5 s, whatever ``queue.idle_wait``), handing back
        (``nak``) every ad that arrives meanwhile. Before (chaos47 F2) the stop unsubscribed at once: nats-server checks
        a pull request's listener when it picks the request and routes the delivery to it on another goroutine, so an
        ``UNSUB`` taken between the two lost the ad at the server, which counted it delivered: it waited the consumer's
        ``ack_wait`` (30 s), 4 ads in 24 drains of busy workers. The worker's drain of its running analyses runs
        meanwhile (:mod:`gamead_core.worker.runtime`)."""
        loop, self._ending = asyncio.get_running_loop(), True
        self._out.say_wait(time.monotonic(), until, POLL_MARGIN, connected=self._nc.is_connected)  # says why
        while True:
            await self._nak_inboxes()
            now, end = time.monotonic(), min(self._out.latest() + POLL_MARGIN, until)
            if not self._out or not self._nc.is_connected or now >= end:
                return
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(end - now, _settle, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                timer.cancel()

    def _on_bell(self, key: Key, msg: Msg) -> None:
        """An answer to ``key``'s long poll (``batch: 1``: any answer ends the request). An ad is ours to run
        (queued for the next pull) and wakes the worker, its level noted in :attr:`backlog` when more wait behind
        it; 408 (expired) or 404 only ends the request; another status (409 consumer deleted…) ends the quiet spell and
        wakes the worker, whose ordered pull reads the level and says its state. :mod:`.polls_out`: which one ended."""
        status = msg.headers.get(_STATUS) if msg.headers else None
        self._out.ended(key, msg.subject if status else None)
        if status:
            if status not in ("404", "408"):  # the consumer is gone or unusable: the ordered path looks and says
                self.quiet_until = 0.0
                self.backlog.clear()
                self._ring()
            elif self._ending:
                self._wake()
            return
        self.inbox[key].put_nowait(msg)
        try:
            more = msg.metadata.num_pending
        except (ValueError, IndexError, AttributeError):  # not a JetStream delivery: look at the heads
            self.quiet_until = 0.0
            self.backlog.clear()
        else:
            if more:
                self.backlog[key] = more
        self._ring()

    def _ring(self) -> None:
        self.published += 1
        if self.rung_at is None:
            self.rung_at = time.monotonic()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def quiet(self, since: float | None = None) -> None:
        """A look found nothing waiting: from now on, for ``queue.idle_wait``, the long polls watch every level
        (the hints of before are superseded by that look). ``since``: when that look was taken (monotonic; its
        oldest part when a view is read level by level; default now): the spell counts from it."""
        mono = time.monotonic()
        self._quiet_since = mono if since is None else min(since, mono)
        self.quiet_until = mono + self.idle_wait
        self.backlog.clear()

    def loud(self) -> set[int]:
        """End the quiet spell: the next pull looks at the queue heads. Returns the levels a backlog was noted in
        (a view of them read before is out of date)."""
        noted = {level for level, _ in self.backlog}
        self.quiet_until = 0.0
        self.backlog.clear()
        return noted

    def live(self, margin: float = POLL_MARGIN) -> bool:
        """True while a long poll of ours may still be answered with an ad: not answered, and not more than ``margin`` s
        past its expiry (one unanswered that long went with a restarted server). :mod:`gamead_core.worker.alone`."""
        return self._out.latest() > time.monotonic() - margin

    def watched(self, key: Key) -> bool:
        """True while ``key`` has a live long poll of ours."""
        return self._out.expiry(key) > time.monotonic()

    def out(self, key: Key) -> int:
        """Long polls of ``key`` unanswered (expired by our count included): what the server may hold (num_waiting)."""
        return self._out.count(key)

    def level_ordered(self, aging_step: float) -> bool:
        """True when the levels in :attr:`backlog` may be pulled most urgent level first, with no head read: at
        most one partition of each (which partition's head is older is not known), and the quiet spell began less
        than ``aging_step`` seconds ago. Every ad waiting now arrived (or came due) since then, as nothing waited
        when it began, so two of them differ in wait by less than one aging step, and a more urgent level's head
        always has the smaller aging key (:func:`~gamead_core.queue.aging.due_key`: ``due + level × step``)."""
        return level_order_is_aging_order([level for level, _ in self.backlog],
                                          time.monotonic() - self._quiet_since, aging_step)

    async def place(self, skip: list[Key] | None = None, room: int | None = None) -> None:
        """Make sure each readable (level, partition) not in ``skip`` nor :attr:`full` has one long poll waiting at
        the server, as many as ``room`` (what the worker can take after this step's ads; None: no bound) leaves beyond
        the live ones, most urgent first; the others are :attr:`short` (.poll_room)."""
        if self._reconnect_count() != self._reconnects:  # a restarted server kept no pull request of ours: none
            self._forget()  # is live, nor the quiet spell they vouched for (quiet48: the next ad waited ~idle_wait)
        mono = time.monotonic()
        keys = [k for k in self.inbox if not ((skip and k in skip) or k in self.full
                or self._out.expiry(k) > mono or not self._readable(k[0]))]
        placing = to_place(keys, room, self._out.watched(mono))
        if not self.short:
            self._short_at = mono
        self.short, self._room = set(keys[len(placing):]), room
        for key in placing:
            reply = f"{self._bell[key]}.{next(self._asked)}"  # live from before it is sent (:meth:`live`)
            self._out.sent(key, reply, mono + self.idle_wait, gone_before=mono - POLL_MARGIN)
            try:
                await self._nc.publish(self._subject[key], self._request, reply=reply)
            except nats.errors.Error:
                self._out.ended(key, reply)
                return  # NATS is away: the next pull says so

    def _reconnect_count(self) -> int:  # nats-py's count of this connection's reconnections
        return (getattr(self._nc, "stats", None) or {}).get("reconnects", 0)

    def _forget(self) -> None:
        """No long poll of ours is live (none placed yet, or lost with the server), no quiet spell nor hint holds."""
        self._out.clear()
        self.backlog.clear()
        self.short.clear()
        self.quiet_until, self._reconnects = 0.0, self._reconnect_count()

    def take(self, free: int, into: list[Msg] | None = None) -> list[Msg]:
        """Ads already delivered to us (long polls, late answers), most urgent level first, appended to ``into``
        (a new list by default) until it holds ``free``."""
        got: list[Msg] = [] if into is None else into
        for queue in self.inbox.values():  # (level, partition) in level order
            take_delivered(queue, free, got)
        if not self.delivered():
            self.rung_at = None
        return got

    def unstarted(self, ack_wait: float | None = None) -> Iterator[Msg]:
        """The ads delivered to us that no pull took yet (a long poll's ad waiting for a free slot), in level order:
        held, not started (the worker's heartbeat says since when, :mod:`gamead_core.worker.unstarted`). With
        ``ack_wait`` (``queue.ack_wait``, s) only those delivered within it: nothing renews an inbox's ad, so
        JetStream has redelivered an older one, to another worker that may run it (review30 F1)."""
        return (m for q in self.inbox.values() for m in q.waiting(ack_wait) if not is_status(m))

    def delivered(self) -> bool:
        """True when an inbox holds something (an ad or a status answer)."""
        return any(not q.empty() for q in self.inbox.values())

    async def wait(self, since: int, timeout: float, *, idle: bool = True) -> None:
        """Sleep until a long poll brings something after :attr:`published` read ``since``, or ``timeout``
        seconds pass. The long polls are (re)placed first; an ad that arrived since the last look is delivered to
        them at once, so reading ``since`` before a pull makes the wake-up race-free. One future and one timer
        per wait (not ``asyncio.wait_for``'s task). ``idle``: every slot of the worker is free, so the levels it
        handed ads back from (:attr:`full`) get their long polls back; a worker with slots still busy keeps them (and
        those its room leaves :attr:`short`) unwatched and ends the quiet spell instead (within :data:`BUSY_LOOK` for a
        short one): its next pull looks at the heads and takes, for its free slots only, what waits there (a long poll
        per level brought up to five ads for one free slot, and the ad handed back went from one busy worker's long
        poll to the other's, 14-18 times in 6 s: attack37 F4)."""
        if self.delivered():
            return
        self.rung_at = None  # every inbox is empty, however it was emptied (a no_wait pull takes from it too)
        if idle:
            self.full.clear()  # room for anything, a level it handed back from included
        await self.place(room=None if idle else self._room)  # busy: for the room its last step left (.poll_room)
        if not idle and (self.full or self.short):  # its next pull looks at those levels soon: an ad there waits
            timeout = min(timeout, BUSY_LOOK)  # no idle_poll for it
            if self.full or time.monotonic() - self._short_at >= BUSY_LOOK:
                self.quiet_until = 0.0
        if self.published != since or timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _settle, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            timer.cancel()


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
