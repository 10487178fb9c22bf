"""A whole-stream read with bounded bytes in flight: an ephemeral pull consumer asked a slice at a time (left39a).

Why not an ordered (push) consumer, as before: nats-server pushes one up to its flow-control window (32 MiB a
consumer, ``JsFlowControlMaxPending``) before the client has read any, and closes a connection with 64 MiB unsent
(``max_pending``) as a slow consumer. Several reads at once on one connection (the API's reads connection,
:mod:`gamead_core.api.read_conn`) passed that: 4 ``GET /v1/dlq?message=…`` over 50,000 DLQ entries of ~4.5 KB and
2 ``GET /ads`` over 20,000 records closed ``gamead-api-reads`` (``Slow Consumer Detected: MaxPending of 67108864
Exceeded``, 120 MB sent it), both listings 503 ``scan_incomplete``, while each DLQ read stopped at its
``dlq.scan_time`` after ~190 entries: the 32 MiB pushed to each was never read.

Here a read asks for what it reads: at most :data:`REQUESTS_OUT` pull requests of :data:`REQUEST_BYTES`
(``max_bytes``) and :data:`REQUEST_MSGS` messages (``batch``) out at a time, and the reads of one connection
together at most :data:`~gamead_core.queue.feed_room.CONNECTION_BYTES` (a read waits for room, at most
``wait_room`` seconds, before it asks), so nats-server never has more than that unsent to the connection for its
reads, whatever their number; a message over :data:`REQUEST_BYTES` is asked for alone, with room for the server's
``max_payload``. What the reader has not taken yet stays in the feed (at most the requests' bytes and messages), so
a slow reader holds nats-server back instead of filling memory.

The feed answers what the readers used of nats-py's subscription: :meth:`PullFeed.next_msg` (``nats.errors.
TimeoutError`` when nothing came in time: the reader's stall check decides), :meth:`PullFeed.consumer_info`,
:meth:`PullFeed.unsubscribe` (the consumer deleted; ``inactive_threshold`` removes it if that fails). Each
message is the server's delivery with its ``$JS.ACK`` reply (stream sequence, pending: ``scan.position``); no ack
is sent (``AckPolicy.NONE``). A consumer gone (``409``) ends the feed: ``next_msg`` times out at once.

A request lost on its way is asked again (:mod:`gamead_core.queue.pull_lost`); what each status on a request
says: :mod:`gamead_core.queue.pull_status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo

from gamead_core import names
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.feed_room import CONNECTION_BYTES, REQUEST_BYTES, give_back, room_of, size, units
from gamead_core.queue.inline_sub import subscribe_inline
from gamead_core.queue.pull_lost import HEARTBEAT, LOST_AFTER, Request, bound, forget_lost
from gamead_core.queue.pull_status import BIG, FAILED, GONE, OVER, PENDING_MSGS, REFUSED, said, verdict

#: ``batch`` of one pull request: most messages it asks for. A message held costs Python ~0.6 KB more than its wire
#: bytes (nats-py's ``Msg``, its headers dict, subject and reply strings), so a read of small messages (a headers-only
#: one: ~190 B each) held ~2,800 a request, ~3.7 MB for two, and the worker's RSS kept it (perf41: a reaper's read of
#: 30,000 records, +5.2 MB); now a read holds fewer than 3 × 256 messages whatever their size (+1.5 MB)
REQUEST_MSGS = 256
REQUESTS_OUT = 2  #: pull requests one read has out at once (the next asked while the last is read)
EXPIRES = 30.0  #: seconds a pull request waits on the server for messages (the reader's own timeout decides)
INACTIVE = 120.0  #: seconds without a request after which nats-server removes a consumer left behind
DELETE_WAIT = 1.0  #: most seconds a read's end waits for its consumer's deletion
OVERHEAD = 64 * 1024  #: bytes over ``max_payload`` asked for a message too big for :data:`REQUEST_BYTES`
MAX_WAITING = REQUESTS_OUT * 2  #: the consumer's ``max_waiting``: requests nats-server holds for it at once
#: deliveries after which a request sent before them, never heard to end, has: nats-server serves the requests it
#: holds in turn (``waitQueue.pop``), at most MAX_WAITING, so this many answer each whole, the ones before it too;
#: a request whose ``max_bytes`` is filled exactly ends without a word (pullfeed60)
SERVED_WITHIN = 2 * MAX_WAITING * REQUEST_MSGS


class PullFeed:
    """One read's consumer and its inbox; made by :func:`pull_feed`."""

    def __init__(self, js: JetStreamContext, stream: str, consumer: str, *, wait_room: float,
                 round_trip: float = 0.0) -> None:
        self._js, self._nc = js, js._nc
        self._stream, self._consumer = stream, consumer
        self._wait_room = wait_room
        self._inbox = self._nc.new_inbox()
        self._sub: Subscription | None = None
        self._ready: deque[Msg] = deque()
        self._out: dict[str, Request] = {}  #: requests out by reply subject, oldest first
        self._asked = 0  #: requests sent (each one's reply subject ``<inbox>.<n>``)
        self._delivered = 0  #: messages delivered to the feed
        self._why: str | None = None  #: why the feed ended (a status, its consumer not found), None: it has not
        self._last: tuple[str, float] | None = None  #: the last status but a heartbeat, when (monotonic seconds)
        #: seconds a request out may go unheard from (:data:`LOST_AFTER`, or more on a slow link: module doc)
        self._lost_after = max(LOST_AFTER, 2 * round_trip + HEARTBEAT)
        self._forgotten: set[str] = set()  #: reply subjects of requests taken as lost, not heard from since
        self._held = 0  #: bytes in ``_ready`` (:func:`size`)
        self._arrived = asyncio.Event()
        self._next_bytes = REQUEST_BYTES
        self._ended = False
        #: when the first ``503`` since the consumer was last heard from came (monotonic seconds; None: none since)
        self._refused_since: float | None = None

    @property
    def ended(self) -> bool:
        """True once the read cannot go on (its consumer deleted or not found after refusals for the feed's bound, a
        request nats-server will never serve: :meth:`why` says which) or the feed unsubscribed."""
        return self._ended

    async def start(self) -> None:
        self._sub = await subscribe_inline(self._nc, f"{self._inbox}.*", self._on_msg)

    def _on_msg(self, msg: Msg) -> None:
        """In nats-py's read loop: a delivery goes to the reader and says the requests out are alive (it carries its
        message's own subject, not its request's: nats-server serves the requests it holds in turn, so whose it is
        is not known; pullfeed60: counted as the oldest's, a request lost beside one answered took that one's 256,
        and its ``409 Batch Completed`` ended the read); a status (sent to its request's reply subject) says that
        request is alive (``100``), refused, over, or the read's end (:func:`.pull_status.verdict`)."""
        headers, now = msg.headers or {}, time.monotonic()
        status = headers.get(names.HDR_STATUS)
        if status != "503":  # the consumer was heard from (a delivery, a heartbeat, an end of a request)
            self._refused_since = None
        if status is None:
            self._ready.append(msg)
            self._held += size(msg)
            self._delivered += 1
            for request in self._out.values():
                if not request.refused:
                    request.heard = now
            while self._out:  # the oldest first: answered whole without a word, if SERVED_WITHIN passed since it
                reply, oldest = next(iter(self._out.items()))
                if self._delivered - oldest.since < SERVED_WITHIN:
                    break
                del self._out[reply]
                give_back(self._nc, oldest.held)
            self._arrived.set()
            return
        description = headers.get("Description", "")
        kind = verdict(status, description, headers.get(PENDING_MSGS), REQUEST_MSGS)
        if status != "100":
            self._last = (said(status, description), now)
        request = self._out.get(msg.subject)
        if request is not None:
            request.heard = now
        elif msg.subject in self._forgotten and status != "503":  # taken as lost, yet alive: a slow link
            self._forgotten.discard(msg.subject)
            self._lost_after = min(2 * self._lost_after, EXPIRES / 2)
        if kind in (GONE, FAILED):  # whichever request it answers: the read cannot go on
            self._end(f"nats-server answered its pull request {said(status, description)}")
        elif request is not None and kind == REFUSED:  # 503: the consumer's leader not known here yet (flake42:
            request.refused = True  # the read ended at once, ScanIncomplete); asked again shortly
            if status == "503" and self._refused_since is None:
                self._refused_since = now
        elif request is not None and kind in (OVER, BIG):
            del self._out[msg.subject]
            give_back(self._nc, request.held)
            if kind == BIG:  # the next message alone is bigger than a request: ask for it alone
                self._next_bytes = max(REQUEST_BYTES, (self._nc.max_payload or 0) + OVERHEAD)
        self._arrived.set()

    def _end(self, why: str) -> None:
        """The feed has ended: :meth:`next_msg` times out at once, :meth:`why` says ``why``."""
        if not self._ended:
            self._ended, self._why = True, why

    def why(self) -> str:
        """Why the last wait of :meth:`next_msg` got nothing, for an error message: the feed's end, or its state
        (the requests out and when last heard from, the last status, the connection's room)."""
        if self._why is not None:
            return self._why
        now, free = time.monotonic(), room_of(self._nc)[0]._value  # noqa: SLF001 - a diagnostic, read only
        out = f"{len(self._out)} pull request(s) out" + (
            f", heard from {now - max(r.heard for r in self._out.values()):.1f} s ago" if self._out else "")
        last = f"{self._last[0]}, {now - self._last[1]:.1f} s ago" if self._last else "none"
        return (f"{out}; {self._delivered} messages delivered; last status: {last}; "
                f"room free on the connection: {free} of {units(CONNECTION_BYTES)} requests")

    async def _ask(self) -> None:
        """Send pull requests while this read has fewer than :data:`REQUESTS_OUT` out and little unread (less than a
        request's bytes and messages)."""
        while (not self._ended and len(self._out) < REQUESTS_OUT and self._held < REQUEST_BYTES
               and len(self._ready) < REQUEST_MSGS):
            max_bytes, self._next_bytes = self._next_bytes, REQUEST_BYTES
            held, taken, (room, big) = units(max_bytes), 0, room_of(self._nc)
            try:
                async with asyncio.timeout(self._wait_room), big if held > 1 else contextlib.nullcontext():
                    if self._out and held == 1:  # a further request: room waited for while none of ours is ready
                        if not await self._room_unless_ready(room):
                            return
                        taken = 1
                    while taken < held:  # one read at a time takes several units: two never wait on each other
                        await room.acquire()
                        taken += 1
            except TimeoutError:
                give_back(self._nc, taken)
                return  # no room now: the reader's timeout and stall check decide
            if self._ended:  # unsubscribed meanwhile
                give_back(self._nc, taken)
                return
            self._asked += 1
            reply = f"{self._inbox}.{self._asked}"
            self._out[reply] = Request(held, self._delivered)
            request = {"batch": REQUEST_MSGS, "max_bytes": max_bytes, "expires": int(EXPIRES * 1e9),
                       "idle_heartbeat": int(HEARTBEAT * 1e9)}
            with nats_boundary():
                await self._nc.publish(names.pull_next_subject(self._stream, self._consumer),
                                       json.dumps(request).encode(), reply=reply)

    async def _room_unless_ready(self, room: asyncio.Semaphore) -> bool:
        """One unit of ``room`` (True), or False as soon as this read has a message to hand out (or has ended): a read
        with a request out never waits for room while its own messages wait unread. Before (attack39c F1), 100 reads
        at once on one connection each took one unit and then waited for a second with their messages delivered:
        32 held the whole room and none read, for ``wait_room`` (30 s) twice, then 20 ended ScanIncomplete.
        A unit free is taken at once, messages ready or not (that is no wait: the next request goes out while the
        reader reads, perf41), and neither that nor a refusal makes a task (:meth:`next_msg` asks after each message
        it hands out: a task made and cancelled for each ask was ~30 % of a headers-only read's CPU)."""
        if self._ended:
            return False
        if not room.locked():  # (Semaphore.acquire does not suspend then)
            await room.acquire()
            return True
        if self._ready:
            return False
        acquiring = asyncio.ensure_future(room.acquire())
        try:
            while not acquiring.done() and not self._ready and not self._ended:
                self._arrived.clear()
                arrived = asyncio.ensure_future(self._arrived.wait())
                try:
                    await asyncio.wait({acquiring, arrived}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    arrived.cancel()
        finally:
            if not acquiring.done():
                acquiring.cancel()
        if acquiring.done() and not acquiring.cancelled():
            if self._ready or self._ended:
                room.release()  # taken as the read's messages came: not needed now
                return False
            return True
        return False

    async def next_msg(self, timeout: float) -> Msg:
        """The next message in stream order. Raises ``nats.errors.TimeoutError`` when none came within ``timeout``
        seconds of asking, a wait for room not counted (``wait_room`` bounds it), or the consumer is gone; the
        gamead error of a NATS that refuses the request."""
        if not self._ready:
            await self._ask()
            deadline, limit = time.monotonic() + timeout, bound(self._lost_after, timeout)
            while not self._ready:
                if self._ended or not self._out:
                    raise nats.errors.TimeoutError
                left = deadline - time.monotonic()
                if left <= 0:
                    raise nats.errors.TimeoutError
                self._arrived.clear()
                soonest = forget_lost(self._nc, self._out, self._forgotten, limit)
                with contextlib.suppress(asyncio.TimeoutError):  # a wait cut short to look for lost requests
                    await asyncio.wait_for(self._arrived.wait(), min(left, soonest))
                forget_lost(self._nc, self._out, self._forgotten, limit)
                if self._refused_since is not None and time.monotonic() - self._refused_since >= limit:
                    if await self._gone(deadline - time.monotonic()):
                        self._end("its consumer is gone (pull requests refused, consumer not found)")
                        raise nats.errors.TimeoutError
                    self._refused_since = time.monotonic()  # there, or no answer: checked again after a bound
                asked = time.monotonic()
                await self._ask()  # a request ended without messages (expired, too small) or lost: ask again
                deadline += time.monotonic() - asked  # a wait for room (this process's other reads, each at most
                # wait_room) is no silence of the server's: it was not asked (flake55: 24 reads, load ~40)
        msg = self._ready.popleft()
        self._held -= size(msg)
        if len(self._out) < REQUESTS_OUT and not self._ended and self._next_bytes == REQUEST_BYTES \
                and not room_of(self._nc)[0].locked():  # the next request now, if it need not wait for room
            await self._ask()
        return msg

    async def consumer_info(self) -> ConsumerInfo:
        """The consumer's info (``num_pending``: messages it has not delivered yet)."""
        return await self._js.consumer_info(self._stream, self._consumer)

    async def _gone(self, left: float) -> bool:
        """True when nats-server says the consumer (or its stream) does not exist; False when it is there or gives no
        answer within ``left`` seconds (a refusal is then taken for a leader not known yet: flake42)."""
        try:
            await asyncio.wait_for(self.consumer_info(), max(left, 0.0))
        except nats.js.errors.NotFoundError:
            return True
        except (nats.errors.Error, asyncio.TimeoutError):
            pass
        return False

    async def unsubscribe(self) -> None:
        """Stop: the inbox unsubscribed, the room given back, the consumer deleted (quietly: it expires anyway)."""
        self._ended = True
        for request in self._out.values():
            give_back(self._nc, request.held)
        self._out.clear()
        self._ready.clear()
        self._held = 0
        with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError):
            if self._sub is not None:
                await self._sub.unsubscribe()
        with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError):  # a stalled server: INACTIVE removes it
            await asyncio.wait_for(self._js.delete_consumer(self._stream, self._consumer), DELETE_WAIT)


async def pull_feed(js: JetStreamContext, subject: str, *, stream: str, config: ConsumerConfig,
                    wait_room: float = 30.0) -> PullFeed:
    """A read of ``stream`` on ``subject`` as ``config`` says where to start (``deliver_policy``, ``opt_start_seq``
    or ``opt_start_time``, ``headers_only``); the rest of the consumer's config is the feed's own (an ephemeral
    pull consumer, no acks, in memory, one replica). Raises the gamead error of a NATS that does not create it
    (:func:`~gamead_core.queue.connection.nats_boundary`)."""
    own = ConsumerConfig(deliver_policy=config.deliver_policy, opt_start_seq=config.opt_start_seq,
                         opt_start_time=config.opt_start_time, headers_only=config.headers_only,
                         filter_subject=subject, ack_policy=AckPolicy.NONE, mem_storage=True, num_replicas=1,
                         inactive_threshold=INACTIVE, max_waiting=MAX_WAITING)
    sent = time.monotonic()
    with nats_boundary():
        info = await js.add_consumer(stream, own)
    feed = PullFeed(js, stream, info.name, wait_room=wait_room, round_trip=time.monotonic() - sent)
    try:
        with nats_boundary():
            await feed.start()
    except BaseException:
        await feed.unsubscribe()
        raise
    return feed
