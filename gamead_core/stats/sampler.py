"""The one sampler: reads the queue every ``interval`` seconds and derives every figure shown of it.

:class:`QueueSampler` takes a :class:`~gamead_core.stats.reading.QueueReading` per tick (plus, for ``/v1/stats``,
the DLQ's size, the ad-record bucket and the account's storage use: ``sections=True``), keeps a ring of the last
``keep`` samples (the registry's entries in the newest only) and derives the rates over the last minute with the pure
functions of :mod:`gamead_core.stats.rates`. It is the one source of truth: ``/v1/stats`` (and so ``gamead top``)
renders it (:mod:`gamead_core.stats.document`), and the autoscaler decides on it and records the same figures in
``/v1/scale``'s ``observed``.

Rates (per second over the last ``RATE_WINDOW`` s, ``None`` until two samples are known; while the sampler is younger
than that, over the samples it has), all between the same two samples, divided by the seconds between them, which
:attr:`QueueSampler.rate_window` says (:func:`~gamead_core.stats.rates.counter_rates`):

* ``submittedPerSec``: Δ of the work stream's ``last_seq`` (every accepted submit or replay adds one), less the write
  checks' messages (``gamead doctor``'s, a failing API's: :func:`~gamead_core.stats.queued.queued_sequence`);
* ``completed``/``retried``/``deadLetteredPerSec``: Δ of the workers' ``processed``, ``failed − dead`` (+ attempts
  lost with crashed workers: ``lost_count``), ``dead`` counters, as :class:`~.rates.MonotonicTotal` totals (never < 0);
* ``perWorkerPerSec``: :func:`~gamead_core.stats.rates.per_worker_capacity` — the completion rate per worker while ads
  were pending at every sample of the window, else Little's law from the heartbeats capped by the CPU each worker
  spends per ad (``cpuPerAdMs``); which rule gave it is :attr:`QueueSampler.per_worker_basis`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.clock import now as server_now
from gamead_core.config import GameadSettings
from gamead_core.errors import error_text
from gamead_core.models import utc_iso
from gamead_core.queue.liveness import backed_up
from gamead_core.redact import redact_text
from gamead_core.registry import NodeInfo, Percentiles, Registry, server_started
from gamead_core.stats.began import Began
from gamead_core.stats.dlq_room import dlq_reading
from gamead_core.stats.document import stats_document, workers_document
from gamead_core.stats.fleet import fleet_level_wait, fleet_percentiles, worker_load
from gamead_core.stats.gone_watch import GoneWatch
from gamead_core.stats.history import History
from gamead_core.stats.queued import queued_sequence
from gamead_core.stats.rates import COUNTERS, RATE_WINDOW, MonotonicTotal, counter_rates, per_worker_capacity
from gamead_core.stats.reading import QueueReading, read_queue
from gamead_core.stats.records_room import records_reading
from gamead_core.stats.renewal import STALE_INTERVALS, is_stale, renew_if_stale
from gamead_core.stats.waiting_again import redeliveries

log = logging.getLogger(__name__)

ACCOUNT_EVERY = 5  #: account info (storage use) is read every this many samples


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading plus what was derived from it at the time: totals that only grow, merged percentiles."""

    reading: QueueReading
    submitted: int | None = None  #: monotonic totals
    completed: int | None = None
    retried: int | None = None  #: failed attempts to be retried
    dead: int | None = None  #: ads dead-lettered
    processing: Percentiles = field(default_factory=Percentiles)
    queue_wait: Percentiles = field(default_factory=Percentiles)
    dlq_size: int | None = None
    #: queue-wait p95 (ms) per level over the last minute (levels with data); ``level_wait_estimate``: its bucket
    level_wait_p95: dict[int, float | None] = field(default_factory=dict)
    level_wait_estimate: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def t(self) -> float:
        return self.reading.t


class Link(Protocol):
    """What the sampler needs of a NATS link (``api.state.QueueLink`` fits; either may be None while down)."""

    nc: NATS | None
    js: JetStreamContext | None


class QueueSampler:
    """Samples once per ``interval`` (``run``) or on demand (``sample``) into a ring of ``keep`` samples.

    ``sections``: also read what only ``/v1/stats`` shows (DLQ, records bucket, account, the lost-attempts
    counter in ``retriedPerSec``, ``extras``: named callables, sync or async, read once per sample with a 0.5 s
    bound). ``registry`` may be set later, once
    NATS is connected.
    """

    def __init__(
        self,
        link: Link,
        settings: GameadSettings,
        *,
        node_id: str,
        interval: float = 1.0,
        keep: int = 600,
        registry: Registry | None = None,
        sections: bool = True,
        extras: Mapping[str, Callable[[], Any]] | None = None,
        clock: Callable[[], float] = server_now,  # nats-server's time: ages, heartbeats (attack33a F1, F3)
    ) -> None:
        self.link = link
        self.settings = settings
        self.node_id = node_id
        self.interval = interval
        self.registry = registry
        self.sections = sections
        self.extras = dict(extras or {})
        self.clock = clock
        self.ring: deque[Sample] = deque(maxlen=keep)
        self.history = History(keep)
        self.rates: dict[str, float | None] = {**{k: None for k in COUNTERS}, "perWorkerPerSec": None}
        #: how ``perWorkerPerSec`` was derived (``PerWorkerRate.wire()``: ``bound``, ``cpuPerAdMs``…), or None
        self.per_worker_basis: dict[str, Any] | None = None
        #: seconds the rates are over and divided by (``rates.windowSeconds``: ``RATE_WINDOW`` ± half an interval,
        #: less after a restart), or None
        self.rate_window: float | None = None
        self.began = Began(clock)  #: when it began counting (nats-server's clock: review33 R6)
        self._submitted, self._completed, self._retried, self._dead = (MonotonicTotal() for _ in range(4))
        self._queued: tuple[int, int, int] | None = None  #: :func:`.queued.queued_sequence`'s last result
        self.nodes_ok = False
        #: the registry's entries at its last read, and when (epoch s): None until this node first read it
        self.registry_nodes: tuple[NodeInfo, ...] | None = None
        self.registry_read_at: float | None = None
        self.vanished = GoneWatch()  #: nodes listed ``gone`` (``.gone``), and those held (:mod:`.gone_watch`)
        self.dlq_bytes: int | None = None
        self.dlq_max: int | None = None  #: dlq.max_msgs as the stream has it (None: unlimited)
        self._dlq_size: int | None = None
        self.records, self.records_at = None, None  #: ``records``' reading (dict or None), when (time.monotonic())
        self.account: dict[str, Any] | None = None
        self.extra_values: dict[str, Any] = {k: None for k in self.extras}
        self.errors: list[str] = []
        self._ticks, self._failing = 0, False
        self._first_read: asyncio.Future[None] | None = None  #: read_registry_once's read in flight
        self.renewing: asyncio.Future[Sample] | None = None  #: renew_if_stale's sample in flight
        self._one_at_a_time = asyncio.Lock()

    # --- sampling ----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Sample every ``interval`` until ``stop`` is set. Never raises."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stop.is_set():
            try:
                await self.sample()
                if self._failing:
                    log.info("stats sampling recovered")
                self._failing = False
            except Exception as exc:  # noqa: BLE001 - the sampler must outlive any one bad sample
                if not self._failing:
                    log.warning("stats sampling failed: %r", exc)
                self._failing = True
            next_at += self.interval
            now = loop.time()
            if next_at < now:  # fell behind (a slow NATS): skip the missed ticks
                next_at = now + self.interval
            try:
                await asyncio.wait_for(stop.wait(), timeout=next_at - now)
            except asyncio.TimeoutError:
                pass

    async def sample(self, only_if_stale: bool = False) -> Sample:
        """Take one sample now, append it to the ring and update the rates; one at a time, in order (review29 F7).
        ``only_if_stale``: none if a sample taken meanwhile is not stale (:func:`.renewal.is_stale`): the newest."""
        async with self._one_at_a_time:
            now = self.clock()
            if only_if_stale and self.ring and not is_stale(self, now):
                return self.ring[-1]
            self._ticks += 1
            if self.sections:
                await self._sample_extras()
            nc, js = self.link.nc, self.link.js
            reason = None
            if nc is None or js is None or not nc.is_connected:
                reason = redact_text(getattr(self.link, "last_error", None) or "reconnecting")
            elif (waiting := backed_up(nc)) is not None:  # a stalled server: ask nothing
                reason = f"not taking writes ({waiting} bytes wait to be sent)"
            if reason is not None or js is None:
                self.errors = [f"NATS unavailable: {reason}"]
                self.nodes_ok = False
                self.vanished.missed()  # the next read is after a gap (gone_watch)
                sample = Sample(QueueReading(t=now, connected=False))
                self._append(sample)
                return sample
            partitions, registry, qs = self.settings.queue.partitions, self.registry, self.settings.queue
            again = redeliveries(self.link, qs.ack_wait, self.settings.worker.task_timeout)  # (.waiting_again)
            if self.sections:
                reading, extra = await asyncio.gather(read_queue(js, registry, now, partitions, again),
                                                      self._sections(js))
            else:
                reading, extra = await read_queue(js, registry, now, partitions, again, lost=False), []
            self.errors = [*reading.errors, *extra]
            if reading.nodes is not None:  # with the vanished nodes held and those back since the listing (gone_watch)
                reading = replace(reading, nodes=await self.vanished.note(
                    registry, reading.nodes, now, self.settings.registry.ttl, reconnects=nc.stats.get("reconnects", 0)))
            else:
                self.vanished.missed()
            sample = self._derive(reading)
            self._append(sample)
            return sample

    def _derive(self, reading: QueueReading) -> Sample:
        now = reading.t
        submitted = None
        if reading.last_seq is not None:  # the write checks' messages taken off (newcomer55 F1)
            self._queued = queued_sequence(reading.last_seq, reading.checked_writes, self._queued)
            submitted = self._submitted.update({"stream": (self._queued[2], False)}, now)
        completed = retried = dead = None
        processing = queue_wait = Percentiles()
        level_wait: dict[int, Percentiles] = {}
        workers = reading.workers
        if workers is not None:
            self.nodes_ok = True
            self.registry_nodes, self.registry_read_at = reading.nodes, now
            by_key = {f"{n.id}@{n.started_at.timestamp():.3f}": n for n in workers}
            began = self.began.at()  # None before this node's first clock sample: nothing is fresh yet
            fresh = {k: began is not None and server_started(n) >= began for k, n in by_key.items()}
            completed = self._completed.update({k: (n.processed, fresh[k]) for k, n in by_key.items()}, now)
            retried = self._retried.update({**{k: (max(0, n.failed - n.dead), fresh[k]) for k, n in by_key.items()},
                                            **reading.lost_counter}, now)
            dead = self._dead.update({k: (n.dead, fresh[k]) for k, n in by_key.items()}, now)
            processing = fleet_percentiles(workers, "processing")
            queue_wait = fleet_percentiles(workers, "queue_wait")
            level_wait = fleet_level_wait(workers)
        elif any(e.startswith("registry") for e in reading.errors):
            self.nodes_ok = False
        return Sample(reading, submitted, completed, retried, dead, processing, queue_wait, self._dlq_size,
                      {lv: p.p95 for lv, p in level_wait.items()},
                      {lv: p.estimate for lv, p in level_wait.items() if p.estimate is not None})

    def _append(self, sample: Sample) -> None:
        """Add ``sample`` to the ring; derive the history series and rates. Only the newest keeps its nodes (F6)."""
        prev = self.ring[-1] if self.ring else None
        if prev is not None and prev.reading.nodes:
            prev = self.ring[-1] = replace(prev, reading=replace(prev.reading, nodes=()))
        self.ring.append(sample)
        # all over one span (the samples nearest a minute apart: within half an interval of it, or less after a
        # (re)start), which they divide by and ``rate_window`` says; an interval and its jitter of reach before it
        rates, self.rate_window = counter_rates([(s.t, {k: getattr(s, a) for k, a in COUNTERS.items()})
                                                 for s in self.ring], sample.t, tolerance=1.5 * self.interval)
        self.rates.update(rates)
        self.rates["perWorkerPerSec"] = self._per_worker(sample)
        self.history.add(prev, sample)

    def _per_worker(self, last: Sample) -> float | None:
        window = [s for s in self.ring if s.t >= last.t - RATE_WINDOW]
        workers = last.reading.workers
        saturated = len(window) >= 2 and all((s.reading.pending or 0) > 0 for s in window)
        found = per_worker_capacity(
            None if workers is None else [worker_load(n) for n in workers],
            completion_rate=self.rates["completedPerSec"],
            saturated=saturated,
            since=window[0].t,
        )
        self.per_worker_basis = None if found is None else found.wire()
        return None if found is None else round(found.rate, 3)

    async def current(self) -> Sample | None:
        """The newest sample (None: none yet), for an answer that judges others by it: the registry read once if
        never, renewed if stale (this process stood still: :mod:`.renewal`). Never raises."""
        await self.read_registry_once()
        await renew_if_stale(self, timeout=STALE_INTERVALS * self.interval)  # then answered from memory
        return self.latest

    async def read_registry_once(self) -> None:
        """Read the registry now (within 2 × ``nats.request_timeout``: the listing's deadline and the bucket's opening)
        if no sample has, before a first answer about nodes (saying no node beat would be false); concurrent callers
        share one read. Never raises: a failed read leaves ``registry_read_at`` None and its error in :attr:`errors`."""
        if self.registry_read_at is None and self.registry is not None:
            if self._first_read is None or self._first_read.done():  # else: join the read in flight
                self._first_read = asyncio.ensure_future(self._read_registry(self.registry))
            await asyncio.shield(self._first_read)

    async def _read_registry(self, registry: Registry) -> None:
        try:
            nodes = await asyncio.wait_for(registry.list(), timeout=2 * self.settings.nats.request_timeout)
        except Exception as exc:  # noqa: BLE001 - said in the answer (``error``), as a sample's failed read
            self.errors = [*(e for e in self.errors if not e.startswith("registry")), f"registry: {error_text(exc)}"]
            return
        if self.registry_read_at is None:  # a sample may have read it meanwhile
            self.registry_nodes, self.registry_read_at, self.nodes_ok = tuple(nodes), self.clock(), True

    # --- what only /v1/stats shows ---------------------------------------------------------------------

    async def _sections(self, js: JetStreamContext) -> list[str]:
        want_account = self.account is None or self._ticks % ACCOUNT_EVERY == 1
        parts = await asyncio.gather(
            dlq_reading(js),
            js.account_info() if want_account else asyncio.sleep(0),  # sleep(0): None
            js.stream_info(names.ADS_BUCKET_STREAM),
            return_exceptions=True,
        )
        dlq, account, records = parts
        errors = [f"{what}: {error_text(part)}" for what, part in zip(("DLQ", "account", "records bucket"), parts)
                  if isinstance(part, BaseException)]
        self._dlq_size, self.dlq_bytes, self.dlq_max = (None, self.dlq_bytes, self.dlq_max) if isinstance(
            dlq, BaseException) else dlq
        if not isinstance(records, BaseException):  # with whether intake must stop to keep live records (F1)
            self.records, self.records_at = await records_reading(js, records, self.settings), time.monotonic()
        if not isinstance(account, BaseException) and account is not None:
            a, limits = account, account.limits  # read every ACCOUNT_EVERY samples only: sampledAt says how old
            self.account = {"memoryBytes": a.memory, "fileBytes": a.storage, "maxMemoryBytes": limits.max_memory,
                            "maxFileBytes": limits.max_storage, "streams": a.streams, "consumers": a.consumers,
                            "sampledAt": utc_iso(self.clock())}
        return errors

    async def _sample_extras(self) -> None:
        for name, fn in self.extras.items():
            try:
                value = fn()
                if inspect.isawaitable(value):
                    value = await asyncio.wait_for(value, timeout=0.5)
                self.extra_values[name] = value
            except Exception as exc:  # noqa: BLE001 - an optional section must not break the stats
                log.debug("stats extra %s failed: %r", name, exc)
                self.extra_values[name] = None

    # --- answering (no I/O) -------------------------------------------------------------------------

    @property
    def latest(self) -> Sample | None:
        return self.ring[-1] if self.ring else None

    def stats(self, history: int | None = None) -> dict[str, Any]:
        """The ``/v1/stats`` document (:func:`gamead_core.stats.document.stats_document`)."""
        return stats_document(self, history)

    def workers_payload(self, role: str | None = None) -> dict[str, Any]:
        """The ``/v1/workers`` document (:func:`gamead_core.stats.document.workers_document`)."""
        return workers_document(self, role)


__all__ = ["ACCOUNT_EVERY", "Link", "QueueSampler", "Sample", "worker_load"]
