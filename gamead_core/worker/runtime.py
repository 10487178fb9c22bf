"""The worker process: pull ads with aging, analyse them, record the result, acknowledge.

Read top-down: connect → topology → adopt what a dead predecessor held → loop(pull up to free slots →
one task per ad) → drain on shutdown. Delivery is at-least-once; every record write is a compare-and-set,
and a redelivered ad whose record is already final is acknowledged without being analysed again, so each
ad completes exactly once.

One ad (:meth:`Worker._handle`): read the record (create it from the message if the API never wrote it) →
final? acknowledge · budget spent? dead-letter · else pass the :class:`~gamead_core.worker.solo.SoloGate`
(alone if suspect) → the ``processing`` write, which charges one attempt of the analysis budget
(:mod:`gamead_core.worker.budget`) → analyse → write the outcome (only while the record still names this
delivery) → ``ack`` / ``nak(backoff)``. The inline concerns are hooks around that handler
(:mod:`gamead_core.worker.hooks`, as dramatiq's middleware): the ack-wait keep-alive from pull to settlement,
the time limit of an attempt, fault injection. Outcomes are written by :mod:`gamead_core.worker.settle`.

Our own storage failing is never the ad's fault: a delivery whose record cannot be read or written before
the analysis is handed back uncharged after a back-off (and the worker pulls nothing meanwhile); an outcome
that cannot be written is retried, lease held, until storage answers (:mod:`gamead_core.worker.storage_pause`).

Shutdown (SIGTERM/SIGINT): stop pulling, let in-flight ads finish for up to ``worker.drain_timeout``, then
hand the rest back (the attempt refunded, then ``nak``) so another worker takes them at once. Each write
and ack is shielded from cancellation: an ad is never left half-written. Kubernetes'
terminationGracePeriodSeconds must exceed the drain timeout (see manifests/).

What the counters count: :mod:`gamead_core.worker.counters`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from collections.abc import Sequence

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import ValidationError
from ulid import ULID

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.errors import QueueUnavailable, error_text
from gamead_core.models import AdRecord, Analysis, utcnow
from gamead_core.queue.connection import connect
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.pull import AgingPuller
from gamead_core.queue.topology import ensure_topology
from gamead_core.logs import ad_fields
from gamead_core.registry import HeldAd, NodeInfo, Registry, WorkerSelf, heartbeating, worker_node_info
from gamead_core.shutdown import close_connection
from gamead_core.store.ads import AdStore
from gamead_core.telemetry.histogram import LatencyBuckets
from gamead_core.telemetry.metrics import WorkerMetrics
from gamead_core.telemetry.tracing import consumer_span
from gamead_core.worker.analyzer import analyze, check_analysable
from gamead_core.worker.budget import budget_spent, delivery_id, lost_attempt, superseded
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.faults import FaultInjection
from gamead_core.worker.hooks import Delivery, Hook, Hooks
from gamead_core.worker.keepalive import AckWaitKeepAlive
from gamead_core.worker.reaper import adopt_predecessor, run_reaper
from gamead_core.worker.settle import Settler
from gamead_core.worker.shield import Shield
from gamead_core.worker.solo import SoloGate
from gamead_core.worker.storage_pause import STORAGE_ERRORS, StoragePause
from gamead_core.worker.timelimit import TimeLimit

log = logging.getLogger(__name__)

#: What an ad id in a work message must look like to be used as a record key.
_AD_KEY = re.compile(r"[-_=a-zA-Z0-9]{1,128}")


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{str(ULID())[-6:].lower()}"


def worker_hooks(settings: GameadSettings) -> list[Hook]:
    """The worker's own hooks, outermost first: the time limit, fault injection (only when ``worker.faults``
    is on), the ack-wait keep-alive."""
    w = settings.worker
    hooks: list[Hook] = [TimeLimit(w.task_timeout)]
    if w.faults.rate > 0:
        hooks.append(FaultInjection(w.faults, hang_for=w.task_timeout * 10))
    hooks.append(AckWaitKeepAlive(settings.queue.ack_wait))
    return hooks


class _StorageDown(Exception):
    """Internal: the delivery could not start because our storage failed (nothing was charged)."""


class Worker:
    """One worker process's runtime. ``await Worker(settings, url).run(stop_event)``."""

    def __init__(self, settings: GameadSettings, nats_url: str, *, worker_id: str | None = None,
                 hooks: Sequence[Hook] = ()) -> None:
        self.settings = settings
        self.nats_url = nats_url
        self.id = worker_id or new_worker_id()
        self.concurrency = settings.worker.concurrency
        self.stats = WorkerStats()
        self.metrics = WorkerMetrics(settings.metrics.enabled)  #: Prometheus series, the heartbeat's buckets
        self._tasks: set[asyncio.Task[None]] = set()
        self._shielded = Shield()  #: writes and acks a shutdown must not cut in half
        self._held: dict[int, HeldAd] = {}  #: stream seq → the delivery this worker holds
        self._gate = SoloGate()
        self._nc: NATS | None = None
        self._dlq: DeadLetters | None = None
        self._registry: Registry | None = None
        self._beat: NodeInfo | None = None
        self._settle: Settler | None = None
        self._hooks = Hooks([*worker_hooks(settings), *hooks])  #: extra ``hooks`` run inside the worker's own
        self._pause = StoragePause(self.stats)
        self._abort = asyncio.Event()
        self._pull_problem: str | None = None

    def hand_back_now(self) -> None:
        """Cut the drain short: in-flight ads are handed back (nak) at once."""
        self._abort.set()

    def holding(self) -> list[HeldAd]:
        """The deliveries this worker holds (for its heartbeat)."""
        return list(self._held.values())

    # --- lifecycle -----------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Run the worker until ``stop`` is set, then drain; returns once every held ad is settled or handed
        back and the NATS connection is closed.

        Connects (retrying for 30 s), ensures the topology, adopts what a dead predecessor with this id held,
        then pulls up to ``worker.concurrency`` ads at a time with aging and handles each through the hooks
        (:mod:`gamead_core.worker.hooks`). After ``stop``: no new pulls, in-flight ads get
        ``worker.drain_timeout`` seconds (or until :meth:`hand_back_now`), the rest are handed back (``nak``,
        attempt refunded). Raises :class:`~gamead_core.errors.QueueUnavailable` if NATS cannot be reached at
        start or :class:`~gamead_core.errors.TopologyError` if a stream exists with an incompatible config;
        errors of single ads or pulls are logged and never end the run.
        """
        nc = await connect(self.settings.nats, self.nats_url, name=f"gamead-worker {self.id}", retry_for=30)
        self._nc = nc
        metrics_server = None
        try:
            metrics_server = self.metrics.serve(self.settings, self.id)  # worker.metrics_port (0 = none)
            js = nc.jetstream(timeout=self.settings.nats.request_timeout)
            await ensure_topology(js, self.settings)
            store = await AdStore.open(nc, js)
            self._dlq = DeadLetters(js)
            self._settle = settle = Settler(store, self._dlq, self.settings.worker, worker_id=self.id, stats=self.stats,
                                   pause=self._pause, shielded=self._shielded, ack_wait=self.settings.queue.ack_wait,
                                   metrics=self.metrics)
            registry = Registry(nc, js, self.settings.registry, replicas=self.settings.queue.replicas,
                                timeout=self.settings.nats.request_timeout)
            self._registry = registry
            await registry.open()
            # Before our first heartbeat overwrites it: what a dead process with our id still held.
            await adopt_predecessor(nc, store, registry, self.settings, self._snapshot())
            puller = AgingPuller(nc, js, self.settings.queue, waiting_since=settle.waiting_since,
                                 own=self._held.keys)
            await puller.start()
            await self._hooks.on_start()
            log.info("worker started", extra={"worker_id": self.id, "concurrency": self.concurrency})
            reaper = asyncio.create_task(run_reaper(nc, js, store, registry, self.settings, self.id, stop))
            async with heartbeating(registry, lambda: self._snapshot(draining=stop.is_set()),
                                    self.settings.registry.heartbeat_interval):
                try:
                    await self._loop(puller, stop)
                finally:
                    await puller.stop()
                    await self._drain()
                    await asyncio.gather(reaper, return_exceptions=True)
        finally:
            await close_connection(nc)  # drained; or closed at once if NATS is away
            self.metrics.stop_serving(metrics_server)
            log.info(
                "worker stopped",
                extra={"worker_id": self.id, "processed": self.stats.processed, "failed": self.stats.failed,
                       "handed_back": self.stats.handed_back},
            )

    def describe(self) -> WorkerSelf:
        """What this worker says of itself in its heartbeat (the registry needs nothing else of it)."""
        st = self.stats
        return WorkerSelf(
            id=self.id, concurrency=self.concurrency, started=st.started, in_flight=st.in_flight,
            processed=st.processed, failed=st.failed, last_error=st.last_error, last_progress=st.last_progress,
            recent=list(st.recent), holding=self.holding(), task_timeout=self.settings.worker.task_timeout,
            ack_wait=self.settings.queue.ack_wait, metrics_url=self.metrics.url,
            latency_buckets=LatencyBuckets(**self.metrics.buckets(time.time())),
        )

    def _snapshot(self, *, draining: bool = False) -> NodeInfo:
        self._beat = worker_node_info(self.describe(), draining=draining)
        return self._beat

    async def _announce_held(self) -> None:
        """Put the held ads into our registry entry before their analyses start (see the reaper)."""
        if self._registry is None:
            return
        if self._beat is None:
            info = self._snapshot()
        else:
            info = self._beat.model_copy(update={
                "holding": self.holding(), "in_flight": self.stats.in_flight, "heartbeat_at": utcnow(),
            })
        await self._registry.put_nowait(info)

    async def _loop(self, puller: AgingPuller, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                pause = self._pause.paused_for()
                if pause > 0:  # our storage failed: pulling more would only hand them back
                    await asyncio.wait({stopping}, timeout=pause)
                    continue
                free = 0 if self._gate.blocked else self.concurrency - len(self._tasks)
                if free <= 0:
                    await asyncio.wait({stopping, *self._tasks}, return_when=asyncio.FIRST_COMPLETED)
                    continue
                seen = puller.published
                try:
                    msgs = await puller.pull(free)
                except Exception as exc:  # noqa: BLE001 - a NATS hiccup must not kill the worker
                    self._pull_failed(error_text(exc))
                    await asyncio.wait({stopping}, timeout=1.0)
                    continue
                self._pull_failed(None)
                if not msgs:
                    waiter = asyncio.ensure_future(puller.wait_for_work(seen, self.settings.queue.idle_poll))
                    await asyncio.wait({stopping, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    continue
                for msg in msgs:
                    meta = msg.metadata
                    self._held[meta.sequence.stream] = HeldAd(
                        ad_id=(msg.headers or {}).get(names.HDR_AD_ID, "?"),
                        delivery=delivery_id(meta.sequence.stream, meta.num_delivered or 1),
                        ack_subject=msg.reply or "",
                    )
                self.stats.in_flight = len(self._held)
                await self._announce_held()
                for msg in msgs:
                    task = asyncio.create_task(self._observed(msg))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            stopping.cancel()

    def _pull_failed(self, problem: str | None) -> None:
        """Log pull trouble once when it starts (or changes) and once when it ends, not every second."""
        if problem == self._pull_problem:
            return
        if problem is None:
            log.info("pulling works again")
        else:
            log.warning("pull failed (retrying every second): %s", problem)
        self._pull_problem = problem

    async def _drain(self) -> None:
        """Give in-flight ads ``drain_timeout`` to finish, then hand the rest back."""
        if self._tasks:
            log.info("draining", extra={"in_flight": len(self._tasks)})
            abort = asyncio.ensure_future(self._abort.wait())
            deadline = asyncio.get_running_loop().time() + self.settings.worker.drain_timeout
            while self._tasks and not self._abort.is_set():
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                await asyncio.wait({abort, *self._tasks}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            abort.cancel()
            pending = set(self._tasks)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._shielded.wait()

    # --- one ad --------------------------------------------------------------------------------------
    async def _observed(self, msg: Msg) -> None:
        """:meth:`_handle` with the ad's ids on every log line and in a ``process`` span (gamead_core.telemetry)."""
        headers, meta = msg.headers or {}, msg.metadata
        ad_id = headers.get(names.HDR_AD_ID, "?")
        with ad_fields(ad_id=ad_id, worker_id=self.id, priority=_level(msg.subject),
                       attempt=meta.num_delivered or 1), \
                consumer_span(msg.subject, ad_id, headers, delivery_count=meta.num_delivered or 1,
                              stream_seq=meta.sequence.stream):
            await self._handle(msg)

    async def _handle(self, msg: Msg) -> None:
        if self._gate.running == 0:  # idle time is not "no progress": a stuck check starts from here
            self.stats.last_progress = time.time()
        meta = msg.metadata
        seq = meta.sequence.stream
        delivery = delivery_id(seq, meta.num_delivered or 1)
        ad_id = (msg.headers or {}).get(names.HDR_AD_ID, "?")
        held = Delivery(msg, seq, delivery, ad_id)
        settle = self._settle
        assert settle is not None
        await self._hooks.before_delivery(held)
        settled = False
        try:
            if not _AD_KEY.fullmatch(ad_id):
                settled = True
                await settle.not_an_ad(msg, f"no valid {names.HDR_AD_ID} header")
                return
            try:
                current = await settle.read(msg, ad_id)
            except STORAGE_ERRORS as exc:
                raise _StorageDown(exc.message) from exc
            except ValidationError:
                settled = True
                await settle.not_an_ad(msg, "no record, and its body is not an ad record")
                return
            record = current.record
            if record.status.terminal:
                self.stats.skipped += 1
                settled = True
                await self._shielded(msg.ack())
                return
            if superseded(record, delivery):
                settled = True
                await settle.stale(msg, record, delivery)
                return
            if budget_spent(record, self.settings.worker.max_attempts):
                settled = True
                await settle.give_up(msg, record, delivery)
                return
            suspect = bool(record.suspect) or lost_attempt(record, delivery)
            async with (self._gate.solo() if suspect else self._gate.shared()):
                try:
                    state, current = await settle.begin(current, delivery, suspect)
                except STORAGE_ERRORS as exc:
                    raise _StorageDown(exc.message) from exc
                self._pause.ok()
                if state != "started":
                    settled = True
                    if state == "final":
                        self.stats.skipped += 1
                        await self._shielded(msg.ack())
                    elif state == "spent":
                        await settle.give_up(msg, current.record, delivery)
                    else:
                        await settle.stale(msg, current.record, delivery)
                    return
                if suspect:
                    log.info("ad %s runs alone: it was in flight on a worker that died", ad_id,
                             extra={"ad_id": ad_id, "worker_id": self.id})
                outcome = await self._hooks.attempt(current.record, self._analyse)
                settled = True
                if isinstance(outcome, Analysis):
                    await settle.complete(msg, current, outcome, delivery)
                else:
                    await settle.fail(msg, current, outcome, delivery)
        except asyncio.CancelledError:
            if not settled:
                await self._shielded(settle.hand_back(msg, ad_id, delivery))
            raise
        except _StorageDown as exc:
            # Nothing was charged: hand it back after a back-off, and pull nothing new meanwhile.
            delay = self._pause.failed(QueueUnavailable(str(exc)))
            log.debug("ad %s: our storage failed (%s); handed back uncharged, retry in %.1fs", ad_id, exc,
                      delay, extra={"ad_id": ad_id})
            try:
                await self._shielded(msg.nak(delay=delay))
            except Exception:  # noqa: BLE001 - ack_wait brings it back anyway
                pass
        except Exception as exc:  # noqa: BLE001 - one bad ad must not stop the worker
            self.stats.last_error = repr(exc)
            log.exception("ad %s: unexpected error", ad_id, extra={"ad_id": ad_id})
        finally:
            await self._hooks.after_delivery(held)
            self._held.pop(seq, None)
            self.stats.in_flight = len(self._held)

    async def _analyse(self, record: AdRecord) -> Analysis:
        delay = self.settings.analysis.simulated_latency_ms
        if delay:
            await asyncio.sleep(delay / 1000)
        check_analysable(record.ad)
        return analyze(record.ad)


def _level(subject: str) -> int | None:
    try:
        return names.level_of_subject(subject)
    except (ValueError, IndexError):
        return None
