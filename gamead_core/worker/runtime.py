"""The worker process: pull ads with aging, analyse them, record the result, acknowledge.

Read top-down: connect → topology → adopt what a dead predecessor held → loop(pull for the free slots and, at a
backlog, ``worker.prefetch`` more → start the best in aging order, a step's first deliveries in one task, others
a task each (:mod:`.batch_start`); the rest wait in the prefetch buffer, :mod:`.prefetch`, as do the ads a long poll
brings a full worker, :mod:`gamead_core.queue.inbox`) → hand the buffer back and drain on shutdown. At-least-once:
every record write is a compare-and-set, a redelivered ad whose record is final is acknowledged unanalysed.

One ad: :class:`.handle.AdHandler` (record → checks → analyse → outcome → ack/nak) inside hooks (:mod:`.hooks`:
keep-alive, time limit, faults); outcomes written by :mod:`.settle`; our storage failing is never the ad's fault
(:mod:`.storage_pause`); an unwritable heartbeat stops the pulls (:mod:`.fence`), as a quiet does (:mod:`.quiet`);
an idle worker woken by an ad at a steady flow lets more join it first (:mod:`.linger`). Counters: :mod:`.counters`.

Shutdown (SIGTERM/SIGINT): stop pulling, hand the prefetched ads back, let in-flight ads finish for up to
``worker.drain_timeout``, then hand the rest back (attempt refunded, ``nak``); writes and acks shielded (.drain);
the same, then exit 5 (repartitioned, credentials refused) or 3 (NATS closed the client). See manifests/."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from functools import partial
from typing import Any

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from gamead_core import clock
from gamead_core.config import GameadSettings
from gamead_core.errors import error_text
from gamead_core.ids import new_worker_id
from gamead_core.queue.aging import delivery_key
from gamead_core.queue.connection import connect
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.partition_watch import watch_result
from gamead_core.queue.refusal import stop_if_stale
from gamead_core.queue.pull import AgingPuller
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import NodeInfo, Registry, WorkerSelf, claim, heartbeating, worker_node_info
from gamead_core.registry.beat import BeatHealth
from gamead_core.shutdown import close_connection
from gamead_core.store.ads import AdStore
from gamead_core.telemetry.histogram import LatencyBuckets
from gamead_core.telemetry.metrics import WorkerMetrics
from gamead_core.worker.alone import QueueSide
from gamead_core.worker.announce import announcement, beat_head, now_iso
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.drain import LastWrites, drain
from gamead_core.worker.fence import Fence
from gamead_core.worker.handle import AdHandler
from gamead_core.worker.handback import HandBacks, bound_broken, over_bound
from gamead_core.worker.held import HeldAds, HeldKey
from gamead_core.worker.hooks import Hook, Hooks
from gamead_core.worker.idle import IdleWait, pull_said, puller_settings
from gamead_core.worker.lease import InDoubt, Lease, let_go, watch
from gamead_core.worker.linger import Linger
from gamead_core.worker.nats_silent import stop_begins
from gamead_core.worker.own_hooks import worker_hooks
from gamead_core.worker.keepalive import AckWaitKeepAlive
from gamead_core.worker.batch_start import BatchStart, batch_usable
from gamead_core.worker.prefetch import PrefetchBuffer, buffer_stall, prefetch_depth
from gamead_core.worker.pull_step import pull_step
from gamead_core.worker.quiet import QuietSwitch
from gamead_core.worker.reaper import adopt_predecessor
from gamead_core.worker.reaper_loop import run_reaper
from gamead_core.worker.settle import Settler
from gamead_core.worker.shield import Shield
from gamead_core.worker.slots import SlotWatch
from gamead_core.worker.solo import SoloGate
from gamead_core.worker.storage_pause import StoragePause
from gamead_core.worker.unstarted import unstarted_since, waited_since

log = logging.getLogger(__name__)


class Worker:
    """One worker process's runtime. ``await Worker(settings, url).run(stop_event)``."""

    def __init__(self, settings: GameadSettings, nats_url: str, *, worker_id: str | None = None,
                 hooks: Sequence[Hook] = (), dead_pid: int | None = None) -> None:
        self.settings, self.nats_url = settings, nats_url
        self.id, self._dead_pid = worker_id or new_worker_id(), dead_pid  # dead_pid: gamead up reaped it (.claim)
        self.concurrency, self.stats = settings.worker.concurrency, WorkerStats()
        self.metrics = WorkerMetrics(settings.metrics.enabled)  #: Prometheus series, the heartbeat's buckets
        self._tasks: set[asyncio.Task[None]] = set()  #: and the ads in them not ended (the slots count these):
        self._in_hand, self._batch_ok = 0, batch_usable(settings, len(hooks))  #: in hand: one per handler's task, the
        self._batch: BatchStart | None = None  #: batch start's own; first deliveries of a start step, in one task
        self._quiet = QuietSwitch(self.id, self.stats)  #: a quiet asked stops the pulls (gamead_core.worker.quiet)
        self._shielded, self._writes = Shield(), LastWrites(settings.worker.drain_timeout)  #: a stop's last writes
        self._held = HeldAds()  #: (stream, stream seq) → the delivery this worker holds (gamead_core.worker.held)
        self._gate, self._slots = SoloGate(), SlotWatch(self.concurrency)  #: (slots: wake the pull loop when freed)
        self._side = QueueSide(self._slots, lambda: self._puller)  #: the loop's pulls, as a suspect's start sees them
        self._nc: NATS | None = None
        self._puller: AgingPuller | None = None  #: its long polls' inboxes hold ads unstarted too (.unstarted)
        self._registry: Registry | None = None
        self._beat: NodeInfo | None = None
        self._beat_doc: tuple[NodeInfo, bytes] | None = None  #: the last beat and its announcements' head
        self._handler: AdHandler | None = None
        own_hooks = worker_hooks(settings)
        self._keepalive = next(h for h in own_hooks if isinstance(h, AckWaitKeepAlive))  #: and the buffer's ads
        self._buffer = PrefetchBuffer()  #: deliveries pulled beyond the free slots (gamead_core.worker.prefetch)
        self._handbacks = HandBacks(held=self._held, keepalive=self._keepalive, shielded=self._shielded,  # and the
                                    stats=self.stats, worker_id=self.id, announce=self._announce_held,  # no-room
                                    partitions=settings.queue.partitions)  # levels
        self._last_start = time.monotonic()  #: when the last step started ads (a buffer's stall is timed from it)
        self._hooks = Hooks([*own_hooks, *hooks])  #: extra ``hooks`` run inside the worker's own
        self._pause, self._abort = StoragePause(self.stats), asyncio.Event()  # the abort cuts the drain short
        self._fence = Fence(BeatHealth(), settings.registry.ttl, settings.registry.heartbeat_interval, self.id)
        self._lease = Lease(self._fence.health, settings.registry.ttl, settings.registry.heartbeat_interval)  # .lease
        self._pull_problem: str | None = None

    @property
    def connected(self) -> bool:  # True once run() reached NATS: from then on a stop drains
        return self._nc is not None

    def hand_back_now(self) -> None:  # cut the drain short: in-flight ads are handed back (nak) at once
        self._abort.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then drain; returns once every held ad is settled or handed back and NATS is
        closed. Connects (retrying for 30 s), ensures the topology, adopts what a dead predecessor with this id
        held, then runs up to ``worker.concurrency`` ads at a time, best first with aging (up to ``worker.prefetch``
        more buffered), through the hooks (:mod:`.hooks`). After ``stop``: no new pulls, buffered ads handed back
        (``nak``), in-flight ads get up to ``worker.drain_timeout`` s (:meth:`hand_back_now` cuts it), the rest
        handed back (refunded). Raises ``QueueUnavailable`` (NATS unreachable at start), ``TopologyError`` (a stream
        with an incompatible config), after the drain ``PartitionsChanged`` (repartitioned) or ``CredentialsRefused``
        (``nats.refused_exit_after`` s, :mod:`gamead_core.queue.refusal`); an ad's or a pull's errors are logged."""
        nc = self._nc = await connect(self.settings.nats, self.nats_url, name=f"gamead-worker {self.id}", retry_for=30)
        metrics_server = None
        try:
            metrics_server = await self.metrics.serve(self.settings, self.id)  # worker.metrics_port (0 = none)
            js = nc.jetstream(timeout=self.settings.nats.request_timeout)
            self._keepalive.seed((await ensure_topology(js, self.settings)).live_values("ack_wait"))  # the fleet's
            store = await AdStore.open(nc, js)
            settle = Settler(store, DeadLetters(js), self.settings.worker, worker_id=self.id, stats=self.stats,
                             pause=self._pause, shielded=self._shielded, ack_wait=lambda: self._keepalive.ack_wait,
                             metrics=self.metrics)
            registry = self._registry = Registry(nc, js, self.settings.registry, replicas=self.settings.queue.replicas,
                                                 timeout=self.settings.nats.request_timeout)
            self._handler = AdHandler(self.settings, self.id, stats=self.stats, settle=settle, gate=self._gate,
                                      pause=self._pause, hooks=self._hooks, shielded=self._shielded,
                                      held=self._held, announce=self._announce_held, handed=self._handbacks.handed,
                                      analysed=self._analysed, registry=registry, lease=self._lease,
                                      queue=self._side)  # a suspect ad waits for it (.alone)
            self._doubt = InDoubt(store, self._handler.running, self._handler.taken, self.id)  # .lease
            self._let_go = partial(let_go, self._lease, self.id, buffer=self._buffer, keepalive=self._keepalive,
                                   held=self._held, doubt=self._doubt)  # a lapse: buffer let go, analyses in doubt
            self._batch = BatchStart(self._handler, held=self._held, keepalive=self._keepalive, slots=self._slots,
                                  handoff=lambda msg: self._track(self._run_one(msg)), track=self._track,
                                  ended=self._ended, running=self._running) if self._batch_ok else None
            claimed = await claim(registry, self._snapshot(), interval=self.settings.registry.heartbeat_interval,
                                  ttl=self.settings.registry.ttl, dead_pid=self._dead_pid)  # not a live one's (exit 5)
            await adopt_predecessor(nc, store, registry, self.settings, self._snapshot(), claimed)
            puller = self._puller = AgingPuller(nc, js, puller_settings(self.settings), handed=self._handbacks,
                                                waiting_since=settle.waiting_since, own=self._held.keys,  # .idle
                                                arrived=self._slots.freed)  # a full worker's loop holds them
            await puller.start()
            await self._quiet.listen(nc, claimed, said=lambda: registry.put_nowait(self._snapshot()))  # (.quiet)
            await self._handler.redeliveries.naks.start(nc, self.settings.nats.request_timeout)  # (.naks_seen)
            await self._hooks.on_start()
            log.info("worker started", extra={"worker_id": self.id, "concurrency": self.concurrency})
            reaper = asyncio.create_task(run_reaper(nc, js, store, registry, self.settings, self.id, stop,
                                                    own_beat=self._fence.health))
            stale = asyncio.create_task(stop_if_stale(nc, js, self.settings, self.nats_url, stop))  # exit 5 ends
            lapses = asyncio.create_task(watch(self._lease, self._let_go, self._doubt))  # a lapsed lease (.lease)
            async with heartbeating(registry, lambda: self._snapshot(draining=stop.is_set()),
                                    self.settings.registry.heartbeat_interval, self._fence.health,
                                    last_for=self._writes.left, lost=stop.set):
                try:
                    await self._loop(puller, stop)
                finally:
                    lapses.cancel()
                    answering = await stop_begins(nc, js, self.id, self.settings, len(self._held),  # .nats_silent
                                                  self._keepalive.ack_wait, writes=self._writes, abort=self._abort)
                    polls = asyncio.ensure_future(puller.stop(answering=answering, drain=self._writes.drain_timeout))
                    await self._hand_back()
                    await drain(self._tasks, self._abort, self._writes, self._shielded,
                                self.settings.nats.request_timeout)  # in-flight ads get drain_timeout, then back
                    await polls
                    await asyncio.gather(reaper, return_exceptions=True)
                    changed = await watch_result(stale) or self._fence.health.lost  # id taken over (.registry.owner)
                if changed is not None:
                    raise changed  # exit 5 once repartitioned
        finally:
            await close_connection(nc, drain_timeout=0.0 if self._writes.silent else 5.0)  # drained, unless away/silent
            await self.metrics.stop_serving(metrics_server)
            log.info("worker stopped", extra={"worker_id": self.id, "processed": self.stats.processed,
                                              "failed": self.stats.failed, "handed_back": self.stats.handed_back})

    def describe(self) -> WorkerSelf:
        """What this worker says of itself in its heartbeat: all the registry needs (times: gamead_core.clock)."""
        st = self.stats
        return WorkerSelf(id=self.id, concurrency=self.concurrency, started=st.started, in_flight=st.in_flight,
            processed=st.processed, failed=st.failed, dead=st.dead, last_error=st.last_error, quiet=self._quiet.on,
            last_progress=st.last_progress, recent=list(st.recent), holding=self._held.listing(),
            task_timeout=self.settings.worker.task_timeout, unstarted_since=self._unstarted(),  # handed: .handed
            handed_back=self._handbacks.recent.wire(time.monotonic()),
            ack_wait=self._keepalive.ack_wait, heartbeat_interval=self.settings.registry.heartbeat_interval,
            metrics_url=self.metrics.url, latency_buckets=LatencyBuckets(**self.metrics.buckets(clock.now())),
            cpu_per_ad_ms=st.cpu_per_ad_ms(), partitions=self.settings.queue.partitions)  # cpu: gamead_core.stats.rates

    def _unstarted(self) -> dict[int, float]:  # beat's and announcement's unstartedSince (.unstarted, .announce)
        return unstarted_since(self._puller.unstarted() if self._puller else (), known=self._buffer.waiting())

    def _snapshot(self, *, draining: bool = False) -> NodeInfo:
        self._beat = worker_node_info(self.describe(), draining=draining)
        return self._beat

    async def _announce_held(self) -> None:
        """Put the held ads into our registry entry before their analyses start (see the reaper): the last beat with
        :data:`.announce.FRESH` brought up to date, spliced onto its bytes made once per beat, not a dump per pull."""
        if self._registry is None:
            return
        beat = self._beat if self._beat is not None else self._snapshot()
        if self._beat_doc is None or self._beat_doc[0] is not beat:
            self._beat_doc = (beat, beat_head(orjson.loads(beat.model_dump_json())))
        await self._registry.put_raw_nowait(beat.id, announcement(
            self._beat_doc[1], self._held.wire_json(), self.stats.in_flight, now_iso(clock.now()), self._unstarted(),
            self._handbacks.recent.wire(time.monotonic())))

    async def _loop(self, puller: AgingPuller, stop: asyncio.Event) -> None:
        """Fill free slots, best ad first, from the prefetch buffer and the queue (:mod:`.prefetch`): with enough
        buffered for the free slots, only ads that beat its best are pulled; else the free slots and up to
        ``worker.prefetch`` more (:func:`.prefetch.prefetch_depth`), in one request when a level has a backlog."""
        stopping = asyncio.ensure_future(stop.wait())
        idle, linger = IdleWait(), Linger(self.settings.worker.linger_ms / 1000)  #: the wait for work, here (.idle)
        stopping.add_done_callback(self._quiet.waking(lambda: (self._slots.freed(), idle.cut())))  # or a quiet
        buffer, ws, qs, side = self._buffer, self.settings.worker, self.settings.queue, self._side
        try:
            while not stop.is_set():
                if self._quiet.on and await self._quiet.hold(puller, stopping, self._hand_back):
                    continue  # quiet: no pull, no long poll parked, until resumed (gamead_core.worker.quiet)
                pause = max(self._pause.paused_for(), 1.0 if (fenced := self._fence.closed()) else 0.0)
                if pause > 0:  # our storage failed (pulling more would only hand them back), or our heartbeat
                    if buffer and fenced:  # is not written: hand back (.fence)
                        await self._hand_back(why="its heartbeat cannot be written: its registry entry will expire")
                    await asyncio.wait({stopping}, timeout=pause)
                    continue
                free = self._slots.free(self._in_hand, blocked=self._gate.blocked)
                if free <= 0:
                    if came := puller.take_delivered():  # ads a long poll brought to a full worker (.queue.inbox):
                        with side:  # held, announced, kept alive now; buffered or handed back
                            await self._start(came, 0)
                        continue  # look again: a slot freed or an ad came during the start woke no one (no waiter)
                    stall = buffer_stall(ws.prefetch_wait) if buffer else None
                    wait = None if stall is None else max(0.0, self._last_start + stall - time.monotonic())
                    woke = await self._slots.wait(self._fence.bound(wait))  # a slot freed, the stop, a timeout
                    if not woke and stall is not None and time.monotonic() - self._last_start >= stall:
                        await self._hand_back(buffer.take_all(), why=f"no slot freed for {stall:g} s")
                    continue
                buffered, seen = len(buffer), puller.published
                with side:  # our pull under way, then the start step of what it brought (a suspect waits: .alone)
                    try:
                        msgs: list[Msg] | None = await pull_step(puller, buffer, free, ws, self.concurrency,
                                                                 self._slots.pace)
                    except Exception as exc:  # noqa: BLE001 - a NATS hiccup must not kill the worker
                        self._pull_problem = pull_said(self._pull_problem, error_text(exc))
                        msgs = [] if buffered else None  # None: nothing to start, look again in a second
                    else:
                        self._pull_problem = pull_said(self._pull_problem, None)
                    if msgs or buffered:
                        linger.took(len(msgs or ()))
                        await self._start(msgs or [], free)
                if msgs is None:
                    await asyncio.wait({stopping}, timeout=1.0)
                elif not msgs and not buffered and not stop.is_set():  # stop set now: its cut may have come already
                    await idle.wait(puller.wait_for_work(seen, qs.idle_poll, idle=free >= self.concurrency))
                    gather = linger.after_wake(time.monotonic(), puller.rung_at) if puller.published != seen else 0
                    if gather and not stop.is_set():  # woken by an ad: let more join it (.linger)
                        await idle.wait(asyncio.sleep(gather))
        finally:
            stopping.cancel()

    async def _start(self, msgs: list[Msg], free: int) -> None:
        """Hold the new deliveries ``msgs`` (not started), then start the best ``free`` of them and of the buffer; the
        rest stay buffered. One held-ads announcement covers the step, put before its analyses start (the reaper)."""
        buffer, ws = self._buffer, self.settings.worker  # (ws: the bound holds whatever the pull brought, .handback)
        if self._lease.news():  # lapsed since the watch looked: nothing held may start (.lease)
            self._let_go()
        changed = bool(msgs)
        if msgs:
            now = clock.now()  # the stamps' clock (this host's aged every ad younger than its lag 0: attack33a F2)
            step = self.settings.queue.aging_step
            for msg in msgs:
                self._held.hold_delivery(msg)
                self._keepalive.hold(msg)
                buffer.push(msg, delivery_key(msg, now, step), waited_since(msg))
        starting = [buffer.pop() for _ in range(min(free, len(buffer)))]
        self._last_start = time.monotonic() if starting else self._last_start
        depth = prefetch_depth(ws.prefetch, self.concurrency, self._slots.pace, ws.prefetch_wait)
        await self._hand_back(back := over_bound(buffer, depth), "beyond the buffer's bound")
        self._handbacks.after_step(back, free=free, started=len(starting), depth=depth, buffered=len(buffer))
        # may run unmarked (gamead_core.worker.handle, fast path): flagged so that a crash charges it; not while a
        # suspect ad waits or runs alone (poison55: a pull out as it went alone flagged 2 ads: its crash uncharged)
        fast = ws.processing_mark_after > 0 and not self._gate.blocked  # the loop below never awaits
        for msg in starting:
            meta = msg.metadata
            if fast and (meta.num_delivered or 1) == 1:
                changed = self._held.mark_started((meta.stream, meta.sequence.stream)) or changed
        self.stats.in_flight = self._running(len(starting))
        if broken := bound_broken(len(buffer), self.stats.in_flight, depth=depth, concurrency=self.concurrency):
            log.error("worker invariant broken: %s", broken, extra={"worker_id": self.id})
        if changed:
            await self._announce_held()
        batch, single = self._batch.split(starting) if self._batch is not None else ([], starting)
        for msg in single:  # each in its handler's task; first deliveries together in the batch start's (.batch_start)
            self._track(self._run_one(msg), 1)
        if batch:
            self._track(self._batch.run(batch), len(batch))  # type: ignore[union-attr]

    def _track(self, coro: Coroutine[Any, Any, None], ads: int = 0) -> None:  # a task the drain waits for
        self._in_hand += ads  # the ads it takes in hand (the slots count them)
        self._tasks.add(task := asyncio.create_task(coro))
        task.add_done_callback(self._tasks.discard)

    def _ended(self, key: HeldKey, slot: object = None) -> None:  # an ad ended (a batch's: slot = key)
        self._held.pop(key)
        self._in_hand -= 1
        self._slots.ended(key if slot is None else slot)
        self.stats.in_flight = self._running()

    async def _hand_back(self, msgs: list[Msg] | None = None, why: str = "shutting down") -> None:
        """``nak`` ``msgs`` (never started; levels noted without room, .handback), or, with none, the whole buffer."""
        await self._handbacks(self._buffer.take_all() if msgs is None else msgs, why, at_once=msgs is None)

    def _running(self, starting: int = 0) -> int:
        """Analyses running (``inFlight``): tasks (+ ``starting``) less those settling (analysed, slot given back)."""
        return self._in_hand + starting - len(self._slots.settling)

    def _analysed(self, key: HeldKey) -> None:
        """Its ad ``key`` analysed: once its slot is given back, neither running nor (flag cleared) a crash's cause."""
        if self._slots.analysed(asyncio.current_task()):
            self._held.unmark(key)
            self.stats.in_flight = self._running()

    async def _run_one(self, msg: Msg) -> None:
        assert self._handler is not None
        self._slots.took(task := asyncio.current_task())  # its slot's pace: until it gives the slot back (.slots)
        try:
            await self._handler(msg)
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type] # before the loop wakes
            self._ended((msg.metadata.stream, msg.metadata.sequence.stream), task)
