"""The worker process: pull ads with aging, analyse them, record the result, acknowledge.

Read top-down: connect → topology → adopt what a dead predecessor held → loop(pull up to free slots →
one task per ad) → drain on shutdown. Delivery is at-least-once; every record write is a compare-and-set,
and a redelivered ad whose record is already final is acknowledged without being analysed again, so each
ad completes exactly once.

One ad (:meth:`Worker._handle`): read the record (create it from the message if the API never wrote it) →
final? acknowledge · budget spent? dead-letter · else pass the :class:`~gamead_core.worker.solo.SoloGate`
(alone if suspect) → the ``processing`` write, which charges one attempt of the analysis budget
(:mod:`gamead_core.worker.budget`) → analyse → write the outcome (only while the record still names this
delivery) → ``ack`` / ``nak(backoff)``. The ad's lease is renewed from pull to settlement.

Our own storage failing is never the ad's fault: a delivery whose record cannot be read or written before
the analysis is handed back uncharged after a back-off (and the worker pulls nothing meanwhile); an outcome
that cannot be written is retried, lease held, until storage answers.

Shutdown (SIGTERM/SIGINT): stop pulling, let in-flight ads finish for up to ``worker.drain_timeout``, then
hand the rest back (the attempt refunded, then ``nak``) so another worker takes them at once. Each write
and ack is shielded from cancellation: an ad is never left half-written. Kubernetes'
terminationGracePeriodSeconds must exceed the drain timeout (see manifests/).

Counters count what this worker's own writes did: ``processed`` only when its write made the ad
``completed``, ``failed`` only when its write recorded the failure, ``skipped`` for deliveries of ads that
were already final, ``handed_back`` for ``nak``\\ s on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import ValidationError
from ulid import ULID

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.errors import (
    Conflict, GameadError, NotFound, PermanentError, QueueFull, QueueUnavailable, RetryableError,
)
from gamead_core.models import AdError, AdRecord, AdStatus, AdSubmission, Analysis, utcnow
from gamead_core.queue.connection import connect
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.pull import AgingPuller
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import HeldAd, NodeInfo, Registry, WorkerSelf, heartbeating, worker_node_info
from gamead_core.store.ads import AdStore, Versioned, decode
from gamead_core.worker.analyzer import analyze
from gamead_core.worker.backoff import backoff
from gamead_core.worker.budget import (
    budget_spent, delivery_id, lost_attempt, lost_error, parse_delivery, superseded, waiting_since,
)
from gamead_core.worker.deadletter import dead_letter
from gamead_core.worker.faults import Fault, pick_fault
from gamead_core.shutdown import close_connection
from gamead_core.logs import ad_fields
from gamead_core.telemetry.histogram import LatencyBuckets
from gamead_core.telemetry.metrics import WorkerMetrics
from gamead_core.telemetry.tracing import consumer_span
from gamead_core.worker.reaper import adopt_predecessor, run_reaper
from gamead_core.worker.solo import SoloGate

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Exit code of an injected ``crash`` fault (the process dies hard, as on an OOM kill).
CRASH_EXIT_CODE = 70
#: Back-off after our storage failed: first and largest pause (seconds) before pulling again.
STORAGE_BACKOFF = 0.5
STORAGE_BACKOFF_CAP = 5.0
#: Errors that mean our own storage (JetStream) failed, not the ad.
STORAGE_ERRORS = (QueueUnavailable, QueueFull)
#: What an ad id in a work message must look like to be used as a record key.
_AD_KEY = re.compile(r"[-_=a-zA-Z0-9]{1,128}")


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt, classified."""

    error_class: str
    message: str
    retryable: bool
    delay: float | None = None  #: a delay the failure asked for, instead of the computed backoff


def check_analysable(ad: AdSubmission) -> None:
    """Refuse content the analyser can never work with: no letters at all in the title and description."""
    if not any(ch.isalpha() for ch in f"{ad.title} {ad.description}"):
        raise PermanentError("the title and description contain no words to analyse")


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{str(ULID())[-6:].lower()}"


@dataclass
class WorkerStats:
    """Counters a worker keeps about itself (shown by the registry and logs). See the module doc."""

    processed: int = 0
    failed: int = 0
    skipped: int = 0
    handed_back: int = 0
    storage_failures: int = 0  #: deliveries or writes that failed because our storage did
    in_flight: int = 0
    last_error: str | None = None
    started: float = field(default_factory=time.time)
    last_progress: float = field(default_factory=time.time)  #: when an ad last finished (stuck detection)
    #: recent (finished_at epoch s, processing ms, queue-wait ms) samples, newest last
    recent: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=512))


class _StorageDown(Exception):
    """Internal: the delivery could not start because our storage failed (nothing was charged)."""


class Worker:
    """One worker process's runtime. ``await Worker(settings, url).run(stop_event)``."""

    def __init__(self, settings: GameadSettings, nats_url: str, *, worker_id: str | None = None) -> None:
        self.settings = settings
        self.nats_url = nats_url
        self.id = worker_id or new_worker_id()
        self.concurrency = settings.worker.concurrency
        self.stats = WorkerStats()
        self.metrics = WorkerMetrics(settings.metrics.enabled)  #: Prometheus series, the heartbeat's buckets
        self._tasks: set[asyncio.Task[None]] = set()
        self._critical: set[asyncio.Future[None]] = set()
        self._held: dict[int, HeldAd] = {}  #: stream seq → the delivery this worker holds
        self._gate = SoloGate()
        self._nc: NATS | None = None
        self._store: AdStore | None = None
        self._dlq: DeadLetters | None = None
        self._registry: Registry | None = None
        self._beat: NodeInfo | None = None
        self._abort = asyncio.Event()
        self._storage_backoff = 0.0
        self._paused_until = 0.0  #: monotonic: no pulls before (our storage failed)
        self._pull_problem: str | None = None

    def hand_back_now(self) -> None:
        """Cut the drain short: in-flight ads are handed back (nak) at once."""
        self._abort.set()

    def holding(self) -> list[HeldAd]:
        """The deliveries this worker holds (for its heartbeat)."""
        return list(self._held.values())

    # --- lifecycle -----------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        nc = await connect(self.settings.nats, self.nats_url, name=f"gamead-worker {self.id}", retry_for=30)
        self._nc = nc
        metrics_server = None
        try:
            metrics_server = self.metrics.serve(self.settings, self.id)  # worker.metrics_port (0 = none)
            js = nc.jetstream(timeout=self.settings.nats.request_timeout)
            await ensure_topology(js, self.settings)
            self._store = store = await AdStore.open(nc, js)
            self._dlq = DeadLetters(js)
            registry = Registry(nc, js, self.settings.registry, replicas=self.settings.queue.replicas,
                                timeout=self.settings.nats.request_timeout)
            self._registry = registry
            await registry.open()
            # Before our first heartbeat overwrites it: what a dead process with our id still held.
            await adopt_predecessor(nc, store, registry, self.settings, self._snapshot())
            puller = AgingPuller(nc, js, self.settings.queue, waiting_since=self._waiting_since,
                                 own=self._held.keys)
            await puller.start()
            faults = self.settings.worker.faults
            if faults.rate > 0:
                log.warning(
                    "FAULT INJECTION IS ON: %.0f%% of attempts on titles matching %r will fail as %r",
                    faults.rate * 100, faults.match or ".*", faults.mode,
                )
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
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                pause = self._paused_until - loop.time()
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
                    self._pull_failed(getattr(exc, "message", None) or repr(exc))
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
        if self._critical:
            await asyncio.gather(*self._critical, return_exceptions=True)

    def _shielded(self, coro: Awaitable[T]) -> Awaitable[T]:
        """Run ``coro`` to completion even if the calling task is cancelled; drain waits for it."""
        fut = asyncio.ensure_future(coro)
        self._critical.add(fut)  # type: ignore[arg-type]
        fut.add_done_callback(self._critical.discard)  # type: ignore[arg-type]
        return asyncio.shield(fut)

    # --- our storage ---------------------------------------------------------------------------------
    def _storage_failed(self, exc: GameadError) -> float:
        """Note a storage failure; returns the seconds before trying again. Pulls pause as long. The pause
        doubles (``STORAGE_BACKOFF`` … ``STORAGE_BACKOFF_CAP``) once per round, not once per failed ad; the
        outage is logged when it starts, not for every ad."""
        self.stats.storage_failures += 1
        self.stats.last_error = f"storage: {exc.message}"
        now = asyncio.get_running_loop().time()
        if now < self._paused_until:  # another ad of the same round
            return self._paused_until - now
        if not self._storage_backoff:
            log.warning("our storage is failing (%s): ads are handed back uncharged and pulls pause, retrying "
                        "with back-off", exc.message)
        self._storage_backoff = min(STORAGE_BACKOFF_CAP, max(STORAGE_BACKOFF, self._storage_backoff * 2))
        self._paused_until = now + self._storage_backoff
        return self._storage_backoff

    def _storage_ok(self) -> None:
        if self._storage_backoff:
            log.info("storage answers again")
        self._storage_backoff = 0.0

    async def _persist(self, write: Callable[[], Awaitable[T]]) -> T:
        """Run ``write`` (shielded) until our storage takes it; the lease is held meanwhile."""
        while True:
            try:
                result = await self._shielded(write())
            except STORAGE_ERRORS as exc:
                delay = self._storage_failed(exc)
                log.debug("cannot record an outcome (%s); retrying in %.1fs", exc.message, delay)
                await asyncio.sleep(delay)
                continue
            self._storage_ok()
            return result

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
        keepalive = asyncio.create_task(self._keep_lease(msg))
        settled = False
        try:
            if not _AD_KEY.fullmatch(ad_id):
                settled = True
                await self._not_an_ad(msg, f"no valid {names.HDR_AD_ID} header")
                return
            try:
                current = await self._read(msg, ad_id)
            except STORAGE_ERRORS as exc:
                raise _StorageDown(exc.message) from exc
            except ValidationError:
                settled = True
                await self._not_an_ad(msg, "no record, and its body is not an ad record")
                return
            record = current.record
            if record.status.terminal:
                self.stats.skipped += 1
                settled = True
                await self._shielded(msg.ack())
                return
            if superseded(record, delivery):
                settled = True
                await self._stale(msg, record, delivery)
                return
            if budget_spent(record, self.settings.worker.max_attempts):
                settled = True
                await self._give_up(msg, record, delivery)
                return
            suspect = bool(record.suspect) or lost_attempt(record, delivery)
            async with (self._gate.solo() if suspect else self._gate.shared()):
                try:
                    state, current = await self._begin(current, delivery, suspect)
                except STORAGE_ERRORS as exc:
                    raise _StorageDown(exc.message) from exc
                self._storage_ok()
                if state != "started":
                    settled = True
                    if state == "final":
                        self.stats.skipped += 1
                        await self._shielded(msg.ack())
                    elif state == "spent":
                        await self._give_up(msg, current.record, delivery)
                    else:
                        await self._stale(msg, current.record, delivery)
                    return
                if suspect:
                    log.info("ad %s runs alone: it was in flight on a worker that died", ad_id,
                             extra={"ad_id": ad_id, "worker_id": self.id})
                outcome = await self._attempt(current.record)
                settled = True
                if isinstance(outcome, Analysis):
                    await self._complete(msg, current, outcome, delivery)
                else:
                    await self._fail(msg, current, outcome, delivery)
        except asyncio.CancelledError:
            if not settled:
                await self._shielded(self._hand_back(msg, ad_id, delivery))
            raise
        except _StorageDown as exc:
            # Nothing was charged: hand it back after a back-off, and pull nothing new meanwhile.
            delay = self._storage_failed(QueueUnavailable(str(exc)))
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
            keepalive.cancel()
            self._held.pop(seq, None)
            self.stats.in_flight = len(self._held)

    async def _read(self, msg: Msg, ad_id: str) -> Versioned:
        """The ad's record; created from the message if the API died between publishing and recording."""
        store = self._store
        assert store is not None
        try:
            return await store.get(ad_id)
        except NotFound:  # the message is the truth
            try:
                await store.create(decode(msg.data))
            except Conflict:
                pass
            return await store.get(ad_id)

    async def _stale(self, msg: Msg, record: AdRecord, delivery: str) -> None:
        """The record names a later delivery than ours. Of the same message: someone else holds it now (our
        lease lapsed), so leave the message to them. Of a later message (a replay or a sweep published the
        ad again): ours is an obsolete copy, acknowledged so it leaves the stream."""
        if parse_delivery(record.delivery)[0] != parse_delivery(delivery)[0]:
            self.stats.skipped += 1
            await self._shielded(msg.ack())

    async def _not_an_ad(self, msg: Msg, why: str) -> None:
        """A work-stream message no API published (no ad id, or a body that is not an ad record): without a
        delivery limit it would come back for ever, so it is terminated, loudly. It never got a 202."""
        log.error("work-stream message %d is not an ad (%s); terminating it", msg.metadata.sequence.stream, why)
        try:
            await self._shielded(msg.term())
        except Exception as exc:  # noqa: BLE001 - it comes back after ack_wait and is refused again
            log.warning("could not terminate message %d: %r", msg.metadata.sequence.stream, exc)

    async def _begin(self, current: Versioned, delivery: str, suspect: bool) -> tuple[str, Versioned]:
        """Mark the ad ``processing`` under ``delivery``, charging one attempt. Returns ``("started", …)``,
        or ``("final" | "spent" | "superseded", record)`` when the record changed so that it must not run."""
        store = self._store
        assert store is not None
        for _ in range(5):
            rec = current.record
            if rec.status.terminal:
                return "final", current
            if superseded(rec, delivery):
                return "superseded", current
            if budget_spent(rec, self.settings.worker.max_attempts):
                return "spent", current
            new = rec.model_copy(update={
                "status": AdStatus.PROCESSING,
                "started_at": utcnow(),
                "attempts": rec.attempts + 1,
                "worker_id": self.id,
                "delivery": delivery,
                "suspect": True if (suspect or rec.suspect or lost_attempt(rec, delivery)) else None,
            })
            try:
                return "started", Versioned(new, await self._shielded(store.update(new, current.revision)))
            except Conflict:
                current = await store.get(rec.id)
        raise Conflict(f"ad {current.record.id} kept changing; not started")

    async def _keep_lease(self, msg: Msg) -> None:
        """Tell JetStream we still hold the ad so it is not redelivered under us (pull to settlement)."""
        period = max(0.5, self.settings.queue.ack_wait / 3)
        while True:
            await asyncio.sleep(period)
            try:
                await msg.in_progress()
            except Exception as exc:  # noqa: BLE001 - best effort; redelivery is the fallback
                log.debug("in_progress failed: %r", exc)

    async def _waiting_since(self, ad_id: str, seq: int, published: float) -> float | None:
        """For the puller: when the delivered, unacknowledged ad ``ad_id`` is or was due for redelivery."""
        store = self._store
        if store is None:
            return None
        try:
            record = (await store.get(ad_id)).record
        except Exception:  # noqa: BLE001 - unreadable: treat as in a worker's hands
            return None
        q, w = self.settings.queue, self.settings.worker
        return waiting_since(record, published, time.time(), ack_wait=q.ack_wait, task_timeout=w.task_timeout)

    async def _attempt(self, record: AdRecord) -> Analysis | Failure:
        """One analysis attempt, bounded by ``worker.task_timeout``, its failure classified."""
        timeout = self.settings.worker.task_timeout
        fault = pick_fault(self.settings.worker.faults, record.ad.title, record.id, record.attempts,
                           generation=record.replay_of or 0)
        try:
            return await asyncio.wait_for(self._analyse(record, fault), timeout)
        except asyncio.TimeoutError:
            return Failure("TaskTimeout", f"analysis took longer than worker.task_timeout ({timeout:g}s)", True)
        except PermanentError as exc:
            return Failure(type(exc).__name__, exc.message, retryable=False)
        except RetryableError as exc:
            return Failure(type(exc).__name__, exc.message, retryable=True, delay=exc.delay)
        except Exception as exc:  # noqa: BLE001 - unknown errors are retried, then dead-lettered
            return Failure(type(exc).__name__, str(exc) or repr(exc), retryable=True)

    async def _analyse(self, record: AdRecord, fault: Fault | None) -> Analysis:
        if fault is not None:
            log.warning("injecting a %s fault into ad %s", fault.mode, record.id, extra={"ad_id": record.id})
            if fault.mode == "crash":
                os._exit(CRASH_EXIT_CODE)
            if fault.mode == "hang":
                await asyncio.sleep(self.settings.worker.task_timeout * 10)
            if fault.mode == "permanent":
                raise PermanentError("injected permanent fault (worker.faults)")
            raise RetryableError("injected retryable fault (worker.faults)")
        delay = self.settings.analysis.simulated_latency_ms
        if delay:
            await asyncio.sleep(delay / 1000)
        check_analysable(record.ad)
        return analyze(record.ad)

    # --- outcomes ------------------------------------------------------------------------------------
    async def _complete(self, msg: Msg, current: Versioned, analysis: Analysis, delivery: str) -> None:
        """Write the completed record (compare-and-set), then acknowledge. Counted only if our write did it."""
        store = self._store
        assert store is not None
        now = utcnow()
        done = current.record.model_copy(update={
            "status": AdStatus.COMPLETED, "completed_at": now, "analysis": analysis, "retry_at": None,
            "suspect": None,
        })

        async def write() -> bool:
            try:
                await store.update(done, current.revision)
                return True
            except Conflict:  # changed meanwhile (a hand-over while we were cut off): finish unless final
                return await store.mutate(
                    done.id,
                    lambda rec: None if rec.status.terminal else done.model_copy(update={"attempts": rec.attempts}),
                ) is not None

        if await self._persist(write):
            self.stats.processed += 1
            self._sample(current.record, now)
        await self._shielded(msg.ack())

    def _sample(self, record: AdRecord, finished: datetime) -> None:
        started, submitted = record.started_at, record.submitted_at
        now = time.time()
        if started is not None:
            processing_ms = (finished.timestamp() - started.timestamp()) * 1000
            wait_ms = (started.timestamp() - submitted.timestamp()) * 1000
            self.stats.recent.append((now, processing_ms, wait_ms))
            self.metrics.completed(record.priority, processing_ms / 1000, wait_ms / 1000, now)
        self.stats.last_progress = now

    async def _fail(self, msg: Msg, current: Versioned, failure: Failure, delivery: str) -> None:
        """Retry with backoff, or dead-letter: at once for a permanent error, else after the last attempt.
        Written only while the record still names this delivery; counted only when written."""
        self.stats.last_progress = time.time()
        wcfg = self.settings.worker
        attempt = current.record.attempts
        error = AdError(error_class=failure.error_class, message=failure.message, retryable=failure.retryable,
                        at=utcnow())
        owns = _owner(delivery)
        if failure.retryable and attempt < wcfg.max_attempts:
            delay = failure.delay if failure.delay is not None else backoff(
                attempt, base=wcfg.backoff_base, cap=wcfg.backoff_cap
            )
            written = await self._persist(lambda: self._record_retry(current, error, delay, owns))
            if written:
                self._count_failure(error)
                self.metrics.retried(current.record.priority)
                await self._shielded(msg.nak(delay=delay))
                log.info("ad %s attempt %d failed (%s); retry in %.2fs", current.record.id, attempt,
                         failure.error_class, delay, extra={"ad_id": current.record.id})
            else:
                await self._settle_foreign(msg, current.record.id)
            return
        made_dead = await self._persist(lambda: self._dead_letter(
            current.record, error, attempt, source_seq=msg.metadata.sequence.stream, owns=owns))
        if made_dead:
            self._count_failure(error)
            await self._shielded(msg.ack())
        else:
            await self._settle_foreign(msg, current.record.id)

    def _count_failure(self, error: AdError) -> None:
        self.stats.failed += 1
        self.stats.last_error = f"{error.error_class}: {error.message}"

    async def _settle_foreign(self, msg: Msg, ad_id: str) -> None:
        """Our outcome was not ours to write (final already, or a later delivery owns the ad): acknowledge
        only if the ad is final; otherwise the owner of the current delivery settles the message."""
        store = self._store
        assert store is not None
        try:
            if (await store.get(ad_id)).record.status.terminal:
                await self._shielded(msg.ack())
        except GameadError:
            pass

    async def _record_retry(
        self, current: Versioned, error: AdError, delay: float, owns: Callable[[AdRecord], bool]
    ) -> bool:
        store = self._store
        assert store is not None

        def retrying(rec: AdRecord) -> AdRecord | None:
            if rec.status.terminal or not owns(rec):
                return None
            return rec.model_copy(update={
                "status": AdStatus.QUEUED,
                "error": error,
                "first_failure_at": rec.first_failure_at or error.at,
                "retry_at": (error.at or utcnow()) + timedelta(seconds=delay),
                "suspect": None,  # it ran and failed without taking its worker down
            })

        new = retrying(current.record)
        if new is None:
            return False
        try:
            await store.update(new, current.revision)
            return True
        except Conflict:
            return await store.mutate(current.record.id, retrying) is not None

    async def _dead_letter(
        self, record: AdRecord, error: AdError, attempts: int, *, source_seq: int | None,
        owns: Callable[[AdRecord], bool] | None = None,
    ) -> bool:
        """Copy the ad into the DLQ first, then mark its record ``dead``. Safe to repeat."""
        store, dlq = self._store, self._dlq
        assert store is not None and dlq is not None
        made = await dead_letter(store, dlq, record, error, attempts, source_seq=source_seq, worker_id=self.id,
                                 owns=owns)
        if made:
            self.metrics.dead(record.priority, error.error_class)
            log.warning("ad %s dead-lettered after %d attempt(s): %s: %s", record.id, attempts,
                        error.error_class, error.message, extra={"ad_id": record.id})
        return made

    async def _give_up(self, msg: Msg, record: AdRecord, delivery: str) -> None:
        """The ad's budget is spent and its last attempt left no outcome (its worker died): dead-letter it."""
        max_attempts = self.settings.worker.max_attempts
        error = lost_error(max_attempts, record)

        def owns(rec: AdRecord) -> bool:
            return budget_spent(rec, max_attempts) and not superseded(rec, delivery)

        made = await self._persist(lambda: self._dead_letter(
            record, error, record.attempts, source_seq=msg.metadata.sequence.stream, owns=owns))
        if made:
            self._count_failure(error)
            await self._shielded(msg.ack())
        else:
            await self._settle_foreign(msg, record.id)

    async def _hand_back(self, msg: Msg, ad_id: str, delivery: str) -> None:
        """Shutdown: give the ad back at once. A started attempt is refunded (record ``queued`` again)
        before the ``nak``; a delivery that had not started is claimed in the record, so nobody mistakes it
        for one still held (see the reaper). Never raises."""
        store = self._store
        assert store is not None
        now = utcnow()

        def back(rec: AdRecord) -> AdRecord | None:
            if rec.status.terminal or superseded(rec, delivery):
                return None
            update: dict[str, object] = {"status": AdStatus.QUEUED, "delivery": delivery,
                                         "retry_at": min(rec.retry_at or now, now)}
            if rec.status == AdStatus.PROCESSING and rec.delivery == delivery:
                update["attempts"] = max(0, rec.attempts - 1)  # not an analysis attempt: refunded
            elif rec.status == AdStatus.PROCESSING:  # an older delivery's attempt never ended
                update["suspect"] = True
            return rec.model_copy(update=update)

        try:
            if await store.mutate(ad_id, back) is None:
                if (await store.get(ad_id)).record.status.terminal:
                    await msg.ack()
                return
        except (GameadError, ValueError) as exc:
            log.warning("ad %s: could not refund its attempt on hand-back: %s", ad_id,
                        getattr(exc, "message", exc), extra={"ad_id": ad_id})
        try:
            await msg.nak()
            self.stats.handed_back += 1
        except Exception as exc:  # noqa: BLE001 - ack_wait brings it back anyway
            log.warning("ad %s: hand-back failed: %r", ad_id, exc, extra={"ad_id": ad_id})


def _level(subject: str) -> int | None:
    try:
        return names.level_of_subject(subject)
    except (ValueError, IndexError):
        return None


def _owner(delivery: str) -> Callable[[AdRecord], bool]:
    """``owns(record)``: the record is still ``processing`` under ``delivery`` (this attempt's own)."""
    return lambda rec: rec.status == AdStatus.PROCESSING and rec.delivery == delivery
