"""The worker process: pull ads with aging, analyse them, record the result, acknowledge.

Read top-down: connect → topology → loop(pull up to free slots → one task per ad) → drain on shutdown.
Delivery is at-least-once; every record write is a compare-and-set and a redelivered ad whose record is
already terminal is acknowledged without being analysed again, so each ad completes exactly once.

Shutdown (SIGTERM/SIGINT): stop pulling, let in-flight ads finish for up to ``worker.drain_timeout``, then
hand the rest back with ``nak`` so another worker takes them at once. The final record write and ack are
shielded from cancellation: an ad is never left half-written. Kubernetes' terminationGracePeriodSeconds
must exceed the drain timeout (see manifests/).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from nats.aio.msg import Msg
from ulid import ULID

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.errors import Conflict, GameadError, NotFound, PermanentError, QueueUnavailable, RetryableError
from gamead_core.models import AdError, AdRecord, AdStatus, AdSubmission, Analysis, utcnow
from gamead_core.queue.connection import connect
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.pull import AgingPuller
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import AdStore, Versioned, decode
from gamead_core.registry import Registry, heartbeating, worker_node_info
from gamead_core.worker.analyzer import analyze
from gamead_core.worker.backoff import backoff
from gamead_core.worker.deadletter import dead_letter
from gamead_core.worker.faults import Fault, pick_fault
from gamead_core.worker.mover import run_mover

log = logging.getLogger(__name__)

#: Exit code of an injected ``crash`` fault (the process dies hard, as on an OOM kill).
CRASH_EXIT_CODE = 70


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
    """Counters a worker keeps about itself (shown by the registry and logs)."""

    processed: int = 0
    failed: int = 0
    skipped: int = 0
    handed_back: int = 0
    in_flight: int = 0
    last_error: str | None = None
    started: float = field(default_factory=time.time)
    last_progress: float = field(default_factory=time.time)  #: when an ad last finished (stuck detection)
    #: recent (finished_at epoch s, processing ms, queue-wait ms) samples, newest last
    recent: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=512))


class Worker:
    """One worker process's runtime. ``await Worker(settings, url).run(stop_event)``."""

    def __init__(self, settings: GameadSettings, nats_url: str, *, worker_id: str | None = None) -> None:
        self.settings = settings
        self.nats_url = nats_url
        self.id = worker_id or new_worker_id()
        self.concurrency = settings.worker.concurrency
        self.stats = WorkerStats()
        self._tasks: set[asyncio.Task[None]] = set()
        self._critical: set[asyncio.Future[None]] = set()
        self._store: AdStore | None = None
        self._dlq: DeadLetters | None = None
        self._abort = asyncio.Event()

    def hand_back_now(self) -> None:
        """Cut the drain short: in-flight ads are handed back (nak) at once."""
        self._abort.set()

    # --- lifecycle -----------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        nc = await connect(self.settings.nats, self.nats_url, name=f"gamead-worker {self.id}", retry_for=30)
        try:
            js = nc.jetstream(timeout=self.settings.nats.request_timeout)
            await ensure_topology(js, self.settings)
            self._store = await AdStore.open(nc, js)
            self._dlq = DeadLetters(js)
            puller = AgingPuller(nc, js, self.settings.queue)
            await puller.start()
            faults = self.settings.worker.faults
            if faults.rate > 0:
                log.warning(
                    "FAULT INJECTION IS ON: %.0f%% of attempts on titles matching %r will fail as %r",
                    faults.rate * 100, faults.match or ".*", faults.mode,
                )
            log.info("worker started", extra={"worker_id": self.id, "concurrency": self.concurrency})
            mover = asyncio.create_task(run_mover(js, self._store, self._dlq, self.settings, stop))
            registry = Registry(nc, js, self.settings.registry, replicas=self.settings.queue.replicas,
                                timeout=self.settings.nats.request_timeout)
            async with heartbeating(registry, lambda: worker_node_info(self, draining=stop.is_set()),
                                    self.settings.registry.heartbeat_interval):
                try:
                    await self._loop(puller, stop)
                finally:
                    await puller.stop()
                    await self._drain()
                    mover.cancel()
                    await asyncio.gather(mover, return_exceptions=True)
        finally:
            await nc.drain()
            log.info(
                "worker stopped",
                extra={"worker_id": self.id, "processed": self.stats.processed, "failed": self.stats.failed,
                       "handed_back": self.stats.handed_back},
            )

    async def _loop(self, puller: AgingPuller, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                free = self.concurrency - len(self._tasks)
                if free <= 0:
                    await asyncio.wait({stopping, *self._tasks}, return_when=asyncio.FIRST_COMPLETED)
                    continue
                seen = puller.published
                try:
                    msgs = await puller.pull(free)
                except (GameadError, OSError, asyncio.TimeoutError) as exc:
                    log.warning("pull failed: %s", getattr(exc, "message", exc) or type(exc).__name__)
                    await asyncio.wait({stopping}, timeout=1.0)
                    continue
                except Exception as exc:  # noqa: BLE001 - a NATS hiccup must not kill the worker
                    log.warning("pull failed: %r", exc)
                    await asyncio.wait({stopping}, timeout=1.0)
                    continue
                if not msgs:
                    waiter = asyncio.ensure_future(puller.wait_for_work(seen, self.settings.queue.idle_poll))
                    await asyncio.wait({stopping, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    continue
                for msg in msgs:
                    task = asyncio.create_task(self._handle(msg))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            stopping.cancel()

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

    def _shielded(self, coro: object) -> asyncio.Future[None]:
        """Run ``coro`` to completion even if the calling task is cancelled; drain waits for it."""
        fut = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._critical.add(fut)
        fut.add_done_callback(self._critical.discard)
        return asyncio.shield(fut)

    # --- one ad --------------------------------------------------------------------------------------
    async def _handle(self, msg: Msg) -> None:
        if self.stats.in_flight == 0:  # idle time is not "no progress": a stuck check starts from here
            self.stats.last_progress = time.time()
        self.stats.in_flight += 1
        settled = False
        ad_id = (msg.headers or {}).get(names.HDR_AD_ID, "?")
        try:
            current = await self._begin(msg)
            if current is None:
                self.stats.skipped += 1
                settled = True
                await self._shielded(msg.ack())
                return
            attempt = max(current.record.attempts, msg.metadata.num_delivered or 1)
            keepalive = asyncio.create_task(self._keep_lease(msg))
            try:
                outcome = await self._attempt(current.record, attempt)
            finally:
                keepalive.cancel()
            settled = True
            if isinstance(outcome, Analysis):
                await self._shielded(self._complete(msg, current, outcome))
            else:
                await self._shielded(self._fail(msg, current, outcome, attempt))
        except asyncio.CancelledError:
            if not settled:
                self.stats.handed_back += 1
                await self._shielded(msg.nak())
            raise
        except QueueUnavailable as exc:
            # Nothing was acknowledged; JetStream redelivers after ack_wait.
            self.stats.last_error = exc.message
            log.warning("ad %s: queue unavailable: %s", ad_id, exc.message)
        except Exception as exc:  # noqa: BLE001 - one bad ad must not stop the worker
            self.stats.last_error = repr(exc)
            log.exception("ad %s: unexpected error", ad_id)
        finally:
            self.stats.in_flight -= 1

    async def _begin(self, msg: Msg) -> Versioned | None:
        """Mark the ad ``processing`` (creating its record from the message if the API never wrote it).

        Returns None when the record is already terminal: a redelivery of finished work.
        """
        store = self._store
        assert store is not None
        ad_id = (msg.headers or {})[names.HDR_AD_ID]
        attempt = msg.metadata.num_delivered

        def start(record: AdRecord) -> AdRecord | None:
            if record.status.terminal:
                return None
            return record.model_copy(
                update={
                    "status": AdStatus.PROCESSING,
                    "started_at": utcnow(),
                    "attempts": max(record.attempts + 1, attempt),
                    "worker_id": self.id,
                }
            )

        try:
            return await store.mutate(ad_id, start)
        except NotFound:  # the API died between publishing and recording: the message is the truth
            try:
                await store.create(decode(msg.data))
            except Conflict:
                pass
            return await store.mutate(ad_id, start)

    async def _keep_lease(self, msg: Msg) -> None:
        """Tell JetStream we are still working so a long analysis is not redelivered under us."""
        period = max(0.5, self.settings.queue.ack_wait / 3)
        while True:
            await asyncio.sleep(period)
            try:
                await msg.in_progress()
            except Exception as exc:  # noqa: BLE001 - best effort; redelivery is the fallback
                log.debug("in_progress failed: %r", exc)

    async def _attempt(self, record: AdRecord, attempt: int) -> Analysis | Failure:
        """One analysis attempt, bounded by ``worker.task_timeout``, its failure classified."""
        timeout = self.settings.worker.task_timeout
        fault = pick_fault(self.settings.worker.faults, record.ad.title, record.id, attempt)
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
            log.warning("injecting a %s fault into ad %s", fault.mode, record.id)
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

    async def _complete(self, msg: Msg, current: Versioned, analysis: Analysis) -> None:
        """Write the completed record (compare-and-set), then acknowledge."""
        store = self._store
        assert store is not None
        now = utcnow()
        done = current.record.model_copy(
            update={"status": AdStatus.COMPLETED, "completed_at": now, "analysis": analysis, "retry_at": None}
        )
        try:
            await store.update(done, current.revision)
        except Conflict:  # redelivered to someone else meanwhile: finish unless they already have
            await store.mutate(
                done.id,
                lambda rec: None if rec.status.terminal else done.model_copy(update={"attempts": rec.attempts}),
            )
        await msg.ack()
        self.stats.processed += 1
        self._sample(current.record, now)

    def _sample(self, record: AdRecord, finished: datetime) -> None:
        started, submitted = record.started_at, record.submitted_at
        now = time.time()
        if started is not None:
            processing_ms = (finished.timestamp() - started.timestamp()) * 1000
            wait_ms = (started.timestamp() - submitted.timestamp()) * 1000
            self.stats.recent.append((now, processing_ms, wait_ms))
        self.stats.last_progress = now

    async def _fail(self, msg: Msg, current: Versioned, failure: Failure, attempt: int) -> None:
        """Retry with backoff, or dead-letter: at once for a permanent error, else after the last attempt."""
        self.stats.failed += 1
        self.stats.last_error = f"{failure.error_class}: {failure.message}"
        self.stats.last_progress = time.time()
        wcfg = self.settings.worker
        now = utcnow()
        error = AdError(error_class=failure.error_class, message=failure.message, retryable=failure.retryable, at=now)
        if failure.retryable and attempt < wcfg.max_attempts:
            delay = failure.delay if failure.delay is not None else backoff(
                attempt, base=wcfg.backoff_base, cap=wcfg.backoff_cap
            )
            await self._record_retry(current, error, delay)
            await msg.nak(delay=delay)
            log.info("ad %s attempt %d failed (%s); retry in %.2fs", current.record.id, attempt,
                     failure.error_class, delay)
            return
        await self.dead_letter(current.record, error, attempt, source_seq=msg.metadata.sequence.stream)
        await msg.ack()

    async def _record_retry(self, current: Versioned, error: AdError, delay: float) -> None:
        store = self._store
        assert store is not None

        def retrying(rec: AdRecord) -> AdRecord | None:
            if rec.status.terminal:
                return None
            return rec.model_copy(update={
                "status": AdStatus.QUEUED,
                "error": error,
                "first_failure_at": rec.first_failure_at or error.at,
                "retry_at": (error.at or utcnow()) + timedelta(seconds=delay),
            })

        try:
            new = retrying(current.record)
            if new is not None:
                await store.update(new, current.revision)
        except Conflict:
            await store.mutate(current.record.id, retrying)

    async def dead_letter(self, record: AdRecord, error: AdError, attempts: int, *, source_seq: int | None) -> None:
        """Copy the ad into the DLQ first, then mark its record ``dead``. Safe to repeat."""
        store, dlq = self._store, self._dlq
        assert store is not None and dlq is not None
        await dead_letter(store, dlq, record, error, attempts, source_seq=source_seq, worker_id=self.id)
        log.warning("ad %s dead-lettered after %d attempt(s): %s: %s", record.id, attempts,
                    error.error_class, error.message)

