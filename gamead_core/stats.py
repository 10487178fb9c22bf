"""What ``GET /v1/stats`` answers, sampled once per second in the background of each API node.

A request never talks to NATS: :class:`StatsSampler` samples the queue, the DLQ, the registry and the server
every ``interval`` seconds (about a dozen sub-millisecond JetStream API calls, run concurrently) and keeps
a ring of the last ``keep`` samples; :meth:`StatsSampler.stats` assembles the answer from memory.

Per sample:

* per level, ``consumer_info`` of its durable: ``num_pending`` (waiting), ``num_ack_pending`` (in flight),
  ``num_redelivered``; and the age of the oldest waiting ad (``get_msg`` of the next undelivered message
  on the level's subject). Each level is read on its own: one that cannot be read (its consumer deleted)
  is shown as unreadable, with why, and the others as usual;
* the work stream's ``last_seq`` (every accepted submit or replay adds one) → submitted per second;
* the registry: workers' ``processed``/``failed`` → completed/failed per second, their recent processing and
  queue-wait percentiles → merged percentiles;
* the DLQ stream's size; the ad-record bucket's keys, bytes and limits; the server's name, version and the
  account's storage use (every 5th sample).

``topology`` and ``storage`` come from the API node's link (its topology watch and storage probe), read from
memory at answer time.

Counters from many workers are turned into totals that only grow (:class:`MonotonicTotal`), so a worker
that restarts (its counters back to zero) or leaves never makes a rate negative. Rates "over the last
minute" are differences of those totals across the ring.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.models import utc_iso
from gamead_core.queue.depth import level_depth
from gamead_core.redact import redact_text
from gamead_core.registry import NodeInfo, Percentiles, Registry, node_state
from gamead_core.telemetry.histogram import BUCKETS, bucket_quantile, sum_counts

log = logging.getLogger(__name__)

RATE_WINDOW = 60.0  #: seconds behind "per second over the last minute"
ACCOUNT_EVERY = 5  #: account info (storage use) is read every this many samples
_FORGET_AFTER = 600.0  #: a vanished node's counters are remembered this long (it may come back)


# --- pure arithmetic ------------------------------------------------------------------------------------


def aging_horizon(level: int, aging_step: float) -> float:
    """Seconds after which a waiting ad of ``level`` has aged to the top: ``(level − 1) × aging_step``
    (one step for level 1). Past it the level is late and the dashboard colours it."""
    return max(level - 1, 1) * aging_step


def merge_percentiles(parts: Iterable[Percentiles]) -> Percentiles:
    """Approximate percentiles of several workers' samples pooled, from each one's p50/p95/p99 and count.

    Each worker's distribution is stood in for by point masses at its p50 (50 %), p95 (45 %) and p99 (5 %):
    exact for one worker, a fair estimate for several (exact merging would need the raw samples).
    """
    points: list[tuple[float, float]] = []
    total = 0
    for p in parts:
        if not p.count or p.p50 is None or p.p95 is None or p.p99 is None:
            continue
        total += p.count
        points += [(p.p50, 0.50 * p.count), (p.p95, 0.45 * p.count), (p.p99, 0.05 * p.count)]
    if not total:
        return Percentiles()
    points.sort()

    def quantile(q: float) -> float:
        need, acc = q * total, 0.0
        for value, weight in points:
            acc += weight
            if acc >= need - 1e-9:
                return value
        return points[-1][0]

    return Percentiles(p50=quantile(0.50), p95=quantile(0.95), p99=quantile(0.99), count=total)


def fleet_percentiles(workers: Iterable[NodeInfo], kind: str) -> Percentiles:
    """The fleet's p50/p95/p99 (ms) of ``kind`` (``processing`` or ``queue_wait``) over the last minute.

    From the sum of the workers' heartbeat bucket counts (``latencyBuckets``, gamead_core.telemetry.histogram)
    when every worker that finished something sends them: exact to the bucket, and what Prometheus'
    ``histogram_quantile()`` over ``gamead_ad_<kind>_seconds_bucket`` gives. Else (an older worker in the
    fleet) the estimate of :func:`merge_percentiles`."""
    nodes = list(workers)
    legacy = [n.processing_ms if kind == "processing" else n.queue_wait_ms for n in nodes]
    if any(n.latency_buckets is None or n.latency_buckets.bounds != list(BUCKETS) for n, p in zip(nodes, legacy)
           if p.count):
        return merge_percentiles(legacy)
    counts = sum_counts((getattr(n.latency_buckets, kind) for n in nodes if n.latency_buckets is not None),
                        len(BUCKETS) + 1)
    total = sum(counts)
    if not total:
        return Percentiles()

    def ms(q: float) -> float | None:
        value = bucket_quantile(q, counts)
        return None if value is None else round(value * 1000, 3)

    return Percentiles(p50=ms(0.50), p95=ms(0.95), p99=ms(0.99), count=total)


class MonotonicTotal:
    """One ever-growing total from counters of many sources that may restart from zero or vanish.

    ``update({key: (counter, fresh)})``: a known key adds its increase (a counter that went down restarted,
    so its whole value is new); an unknown key adds its value only when ``fresh`` (it started after we began
    counting), else 0 — its past belongs to before our window.
    """

    def __init__(self) -> None:
        self.total = 0
        self._last: dict[str, tuple[int, float]] = {}

    def update(self, counters: Mapping[str, tuple[int, bool]], now: float) -> int:
        for key, (value, fresh) in counters.items():
            prev = self._last.get(key)
            if prev is None:
                self.total += value if fresh else 0
            elif value >= prev[0]:
                self.total += value - prev[0]
            else:
                self.total += value
            self._last[key] = (value, now)
        for key in [k for k, (_, seen) in self._last.items() if now - seen > _FORGET_AFTER]:
            del self._last[key]
        return self.total


def window_rate(points: Sequence[tuple[float, int | None]], now: float, window: float = RATE_WINDOW) -> float | None:
    """Per-second increase of a total over the last ``window`` seconds; ``points`` are (t, total), oldest first."""
    known = [(t, v) for t, v in points if v is not None and t >= now - window]
    if len(known) < 2 or known[-1][0] <= known[0][0]:
        return None
    (t0, v0), (t1, v1) = known[0], known[-1]
    return round(max(0, v1 - v0) / (t1 - t0), 3)  # type: ignore[operator]


def step_rates(points: Sequence[tuple[float, int | None]]) -> list[float | None]:
    """Per-second rate between consecutive points (None where either end is unknown); first point None."""
    out: list[float | None] = [None] if points else []
    for (t0, v0), (t1, v1) in zip(points, points[1:]):
        out.append(None if v0 is None or v1 is None or t1 <= t0 else round(max(0, v1 - v0) / (t1 - t0), 3))
    return out


# --- samples ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LevelSample:
    level: int
    waiting: int
    in_flight: int
    redelivered: int
    oldest_age: float | None  #: seconds the oldest waiting ad had waited at sample time; None if none wait


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    connected: bool
    levels: tuple[LevelSample, ...] = ()
    submitted: int | None = None  #: monotonic totals
    completed: int | None = None
    failed: int | None = None
    processing: Percentiles = field(default_factory=Percentiles)
    queue_wait: Percentiles = field(default_factory=Percentiles)
    dlq_size: int | None = None
    #: levels that could not be read at this sample, and why (``priority 3: consumer not found``)
    unreadable: tuple[tuple[int, str], ...] = ()

    def waiting(self, level: int) -> int | None:
        for ls in self.levels:
            if ls.level == level:
                return ls.waiting
        return None


class _Link(Protocol):
    """What the sampler needs of :class:`gamead_core.api.state.QueueLink` (either may be None while down)."""

    nc: NATS | None
    js: JetStreamContext | None
    last_error: str | None


async def level_sample(js: JetStreamContext, level: int, now: float) -> LevelSample:
    d = await level_depth(js, level, now)
    return LevelSample(level, d.waiting, d.in_flight, d.redelivered, d.oldest_age)


def _error_text(exc: BaseException) -> str:
    return redact_text(getattr(exc, "message", None) or str(exc) or type(exc).__name__)


class StatsSampler:
    """Samples once per ``interval`` into a ring of ``keep`` samples; answers ``/v1/stats`` from memory."""

    def __init__(
        self,
        link: _Link,
        settings: GameadSettings,
        *,
        node_id: str,
        interval: float = 1.0,
        keep: int = 600,
        extras: Mapping[str, Callable[[], Any]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.link = link
        self.settings = settings
        self.node_id = node_id
        self.interval = interval
        self.registry: Registry | None = None  #: set once NATS is connected
        self.extras = dict(extras or {})
        self._clock = clock
        self._ring: deque[Sample] = deque(maxlen=keep)
        #: the ``history`` series, extended by one point per sample (a request only slices them)
        self._series: dict[str, deque[Any]] = {name: deque(maxlen=keep) for name in _SERIES}
        self._rates: dict[str, float | None] = {"submittedPerSec": None, "completedPerSec": None,
                                                "failedPerSec": None}
        self._began = clock()
        self._submitted = MonotonicTotal()
        self._completed = MonotonicTotal()
        self._failed = MonotonicTotal()
        self._nodes: list[NodeInfo] = []
        self._nodes_ok = False
        self._stream: dict[str, Any] = {}
        self._dlq_bytes: int | None = None
        self._records: dict[str, Any] | None = None
        self._account: dict[str, Any] | None = None
        self._extras: dict[str, Any] = {k: None for k in self.extras}
        self._errors: list[str] = []
        self._ticks = 0
        self._failing = False

    def nodes_known(self) -> bool:
        """Did the last read of the registry succeed (so that :meth:`nodes` is current)?"""
        return self._nodes_ok

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

    async def sample(self) -> Sample:
        """Take one sample now and append it to the ring."""
        now = self._clock()
        self._ticks += 1
        await self._sample_extras()
        nc, js = self.link.nc, self.link.js
        if nc is None or js is None or not nc.is_connected:
            self._errors = [f"NATS unavailable: {redact_text(self.link.last_error or 'reconnecting')}"]
            self._nodes_ok = False
            sample = Sample(t=now, connected=False)
            self._append(sample)
            return sample
        want_account = self._account is None or self._ticks % ACCOUNT_EVERY == 1
        parts = await asyncio.gather(
            asyncio.gather(*(level_sample(js, lvl, now) for lvl in names.LEVELS), return_exceptions=True),
            js.stream_info(names.ADS_STREAM),
            self._dlq_info(js),
            self._list_nodes(),
            js.account_info() if want_account else _none(),
            js.stream_info(names.ADS_BUCKET_STREAM),
            return_exceptions=True,
        )
        errors: list[str] = []
        levels, stream, dlq, nodes, account, records = parts
        what = ("queue levels", "work stream", "DLQ", "registry", "account", "records bucket")
        for name, part in zip(what, parts):
            if isinstance(part, BaseException):
                errors.append(f"{name}: {_error_text(part)}")
        readable: list[LevelSample] = []
        unreadable: list[tuple[int, str]] = []
        for level, got in zip(names.LEVELS, levels if isinstance(levels, list) else ()):
            if isinstance(got, BaseException):  # this level only: the others are shown as usual
                unreadable.append((level, _error_text(got)))
                errors.append(f"queue level {level}: {_error_text(got)}")
            else:
                readable.append(got)
        self._errors = errors

        submitted = None
        if not isinstance(stream, BaseException):
            state = stream.state
            self._stream = {"messages": state.messages, "bytes": state.bytes, "lastSeq": state.last_seq}
            submitted = self._submitted.update({"stream": (int(state.last_seq or 0), False)}, now)
        dlq_size = None
        if not isinstance(dlq, BaseException):
            dlq_size, self._dlq_bytes = dlq
        if not isinstance(records, BaseException):
            self._records = records_section(records)
        if not isinstance(account, BaseException) and account is not None:
            self._account = {
                "memoryBytes": account.memory, "fileBytes": account.storage,
                "maxMemoryBytes": account.limits.max_memory, "maxFileBytes": account.limits.max_storage,
                "streams": account.streams, "consumers": account.consumers,
            }
        completed = failed = None
        processing = queue_wait = Percentiles()
        if not isinstance(nodes, BaseException) and nodes is not None:
            self._nodes, self._nodes_ok = nodes, True
            workers = {f"{n.id}@{n.started_at.timestamp():.3f}": n for n in nodes if n.role == "worker"}
            fresh = {k: n.started_at.timestamp() >= self._began for k, n in workers.items()}
            completed = self._completed.update({k: (n.processed, fresh[k]) for k, n in workers.items()}, now)
            failed = self._failed.update({k: (n.failed, fresh[k]) for k, n in workers.items()}, now)
            processing = fleet_percentiles(workers.values(), "processing")
            queue_wait = fleet_percentiles(workers.values(), "queue_wait")
        elif isinstance(nodes, BaseException):
            self._nodes_ok = False
        sample = Sample(
            t=now,
            connected=True,
            levels=tuple(readable),
            unreadable=tuple(unreadable),
            submitted=submitted,
            completed=completed,
            failed=failed,
            processing=processing,
            queue_wait=queue_wait,
            dlq_size=dlq_size,
        )
        self._append(sample)
        return sample

    def _append(self, sample: Sample) -> None:
        """Add ``sample`` to the ring and derive what requests read: the series and the minute's rates."""
        prev = self._ring[-1] if self._ring else None
        self._ring.append(sample)
        series = self._series
        series["t"].append(round(sample.t, 3))
        for level in names.LEVELS:
            series[f"waiting.{level}"].append(sample.waiting(level))
        series["inFlight"].append(sum(x.in_flight for x in sample.levels) if sample.levels else None)
        for key, attr in _COUNTERS.items():
            series[key].append(step_rates([(prev.t, getattr(prev, attr)), (sample.t, getattr(sample, attr))])[1]
                               if prev is not None else None)
            self._rates[key] = window_rate([(s.t, getattr(s, attr)) for s in self._ring], sample.t)
        series["processingP95Ms"].append(sample.processing.p95)
        series["queueWaitP95Ms"].append(sample.queue_wait.p95)
        series["dlqSize"].append(sample.dlq_size)

    async def _dlq_info(self, js: JetStreamContext) -> tuple[int, int]:
        try:
            info = await js.stream_info(names.DLQ_STREAM)
        except nats.js.errors.NotFoundError:
            return 0, 0  # no dead letter yet: the DLQ stream is created on first use
        return int(info.state.messages or 0), int(info.state.bytes or 0)

    async def _list_nodes(self) -> list[NodeInfo] | None:
        if self.registry is None:
            return None
        return await self.registry.list()

    async def _sample_extras(self) -> None:
        for name, fn in self.extras.items():
            try:
                value = fn()
                if inspect.isawaitable(value):
                    value = await asyncio.wait_for(value, timeout=0.5)
                self._extras[name] = value
            except Exception as exc:  # noqa: BLE001 - an optional section must not break the stats
                log.debug("stats extra %s failed: %r", name, exc)
                self._extras[name] = None

    # --- answering -------------------------------------------------------------------------------------

    @property
    def latest(self) -> Sample | None:
        return self._ring[-1] if self._ring else None

    def nodes(self, now: float | None = None) -> list[dict[str, Any]]:
        """The live nodes as wire dicts, with ``heartbeatAgeSeconds`` and the state as seen now."""
        now = self._clock() if now is None else now
        at = datetime.fromtimestamp(now, timezone.utc)
        timeout = self.settings.worker.task_timeout
        out = []
        for node in self._nodes:
            item = node.model_dump(mode="json")
            item["state"] = node_state(node, at, timeout)
            item["heartbeatAgeSeconds"] = round(max(0.0, now - node.heartbeat_at.timestamp()), 1)
            out.append(item)
        return out

    def workers_payload(self, role: str | None = None) -> dict[str, Any]:
        now = self._clock()
        items = [n for n in self.nodes(now) if role is None or n["role"] == role]
        return {
            "items": items,
            "count": len(items),
            "generatedAt": utc_iso(now),
            "ttlSeconds": self.settings.registry.ttl,
            "error": None if self._nodes_ok else self._registry_error(),
        }

    def _registry_error(self) -> str:
        if self.registry is None:
            return "registry not connected yet"
        return next((e for e in self._errors if e.startswith(("registry", "NATS"))), "registry unavailable")

    def stats(self, history: int | None = None) -> dict[str, Any]:
        """The ``/v1/stats`` document (see the module docstring); ``history`` = most ring points returned."""
        now = self._clock()
        last = self._ring[-1] if self._ring else None
        step = self.settings.queue.aging_step
        since = now - last.t if last else 0.0

        levels = []
        unreadable = dict(last.unreadable) if last else {}
        for level in names.LEVELS:
            ls = next((x for x in last.levels if x.level == level), None) if last else None
            age = None if ls is None or ls.oldest_age is None else round(ls.oldest_age + since, 3)
            horizon = aging_horizon(level, step)
            levels.append({
                "priority": level,
                "waiting": ls.waiting if ls else None,
                "inFlight": ls.in_flight if ls else None,
                "redelivered": ls.redelivered if ls else None,
                "oldestAgeSeconds": age,
                "agingHorizonSeconds": horizon,
                "overHorizon": age is not None and age > horizon,
                "readable": level not in unreadable if last and last.connected else None,
                "error": unreadable.get(level),
            })

        def total(key: str) -> int | None:
            """The sum over the levels that could be read (None when none could: ``unreadableLevels`` says
            which were left out)."""
            values = [lv[key] for lv in levels if lv[key] is not None]
            return sum(values) if values else None  # type: ignore[arg-type]

        workers = [n for n in self._nodes if n.role == "worker"]
        at = datetime.fromtimestamp(now, timezone.utc)
        states = [node_state(n, at, self.settings.worker.task_timeout) for n in self._nodes]
        nats_info = self._nats_info(last)
        return {
            "generatedAt": utc_iso(now),
            "sampledAt": utc_iso(last.t) if last else None,
            "node": self.node_id,
            "intervalSeconds": self.interval,
            "nats": nats_info,
            "queue": {
                "agingStepSeconds": step,
                "levels": levels,
                "waiting": total("waiting"),
                "inFlight": total("inFlight"),
                "redelivered": total("redelivered"),
                "unreadableLevels": sorted(unreadable),
                "messages": self._stream.get("messages"),
                "bytes": self._stream.get("bytes"),
            },
            "rates": {"windowSeconds": RATE_WINDOW, **self._rates},
            "latency": {
                "windowSeconds": RATE_WINDOW,
                "queueWaitMs": last.queue_wait.model_dump() if last else Percentiles().model_dump(),
                "processingMs": last.processing.model_dump() if last else Percentiles().model_dump(),
            },
            "dlq": {"size": last.dlq_size if last else None, "bytes": self._dlq_bytes},
            "records": self._records,
            "nodes": {
                "api": sum(1 for n in self._nodes if n.role == "api"),
                "workers": len(workers),
                "stuck": states.count("stuck"),
                "draining": states.count("draining"),
                "idle": states.count("idle"),
                "inFlight": sum(n.in_flight for n in workers),
                "concurrency": sum(n.concurrency for n in workers),
            },
            "autoscaler": self._extras.get("autoscaler"),
            # the link's own read-outs: the topology watch (objects missing, incompatible, recreated) and the
            # storage probe (does JetStream store writes?); None before NATS was first reached
            "topology": _link_section(self.link, "topology_status"),
            "storage": _link_section(self.link, "storage_status"),
            # redis_stats(app) gives {cache, redis, ratelimit}: each becomes a top-level section
            **{k: (self._extras.get("cache") or {}).get(k) for k in ("cache", "redis", "ratelimit")},
            "errors": list(self._errors),
            "history": self._history(history),
        }

    def _nats_info(self, last: Sample | None) -> dict[str, Any]:
        nc = self.link.nc
        server: dict[str, Any] = {}
        if nc is not None:
            info = getattr(nc, "_server_info", None) or {}
            server = {"server": info.get("server_name"), "version": info.get("version"),
                      "cluster": info.get("cluster")}
            url = getattr(nc, "connected_url", None)
            if url is not None and url.hostname:
                server["url"] = f"{url.scheme}://{url.hostname}:{url.port}"
        connected = bool(nc is not None and nc.is_connected)
        return {
            "connected": connected,
            "server": server.get("server"),
            "version": server.get("version"),
            "cluster": server.get("cluster"),
            "url": server.get("url"),
            "storage": self._account,
            "error": None if connected else redact_text(self.link.last_error or "reconnecting"),
        }

    def _history(self, points: int | None) -> dict[str, Any]:
        size = len(self._series["t"])
        n = size if points is None else max(0, min(points, size))

        def tail(name: str) -> list[Any]:
            values = self._series[name]
            return list(itertools.islice(values, size - n, size)) if n else []

        return {
            "intervalSeconds": self.interval,
            "points": n,
            "t": tail("t"),
            "waiting": {str(lvl): tail(f"waiting.{lvl}") for lvl in names.LEVELS},
            **{name: tail(name) for name in _SERIES if name != "t" and not name.startswith("waiting.")},
        }


_COUNTERS = {"submittedPerSec": "submitted", "completedPerSec": "completed", "failedPerSec": "failed"}
_SERIES = ("t", *(f"waiting.{lvl}" for lvl in names.LEVELS), "inFlight", *_COUNTERS,
           "processingP95Ms", "queueWaitP95Ms", "dlqSize")


async def _none() -> None:
    return None


def records_section(info: Any) -> dict[str, Any]:
    """``/v1/stats`` ``records``: the ad-record bucket's size (``keys``, ``bytes``) and its retention
    (``maxBytes``, ``maxAgeSeconds``, ``completedMaxAgeSeconds``; None = unbounded)."""
    config, state = info.config, info.state
    ttl = (config.metadata or {}).get(names.RECORDS_FINAL_TTL_METADATA) if config.allow_msg_ttl else None
    return {
        "keys": int(state.messages or 0),
        "bytes": int(state.bytes or 0),
        "maxBytes": config.max_bytes if config.max_bytes and config.max_bytes > 0 else None,
        "maxAgeSeconds": config.max_age or None,
        "completedMaxAgeSeconds": float(ttl) if ttl else None,
    }


def _link_section(link: object, name: str) -> Any:
    read = getattr(link, name, None)
    return read() if callable(read) else None


__all__ = [
    "LevelSample",
    "MonotonicTotal",
    "Sample",
    "StatsSampler",
    "aging_horizon",
    "fleet_percentiles",
    "merge_percentiles",
    "step_rates",
    "window_rate",
]
