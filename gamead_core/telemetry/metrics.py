"""Prometheus metrics of every gamead process (``prometheus-client``), named by Prometheus' conventions
(https://prometheus.io/docs/practices/naming/): base units (seconds), ``_total`` counters, ``_seconds``
histograms, one ``gamead_`` prefix. Label values are bounded: ``priority`` is 1–5, ``outcome`` one of three,
``route`` the route *template* (``/ads/{ad_id}``), ``error_class`` an exception class name. No ad ids.

Who serves what:

* a process exports only the series it produces (registration per role): the API never serves a worker's
  series as 0s, nor a worker the API's. Both registries carry ``process_*`` and ``python_*``
  (prometheus-client's collectors);
* the API (``GET /metrics``, :mod:`gamead_core.api.routes_metrics`): :data:`API_REGISTRY` (submits, replays,
  HTTP requests) and the read-outs of its once-a-second stats sampler (queue gauges, DLQ size, workers,
  autoscaler, cache, rate limits, the Redis circuit breaker) through
  :class:`gamead_core.telemetry.collectors.ApiCollector`;
* each worker (``worker.metrics_port``, :func:`serve_worker_metrics`): :data:`WORKER_REGISTRY` (ads
  processed by outcome, redeliveries, wait and processing histograms, DLQ additions, poison messages terminated, ads
  left for a newer worker);
* both: :data:`DIRECT_GET_FALLBACKS` (direct gets re-asked of the stream leader, :mod:`gamead_core.queue.direct_read`);
* ``gamead up`` itself and the CLI serve none.

Recording is a dictionary lookup and an addition under a lock (prometheus-client's): cheap enough for the
hot path (figures in benchmarks/README.md).
"""

from __future__ import annotations

import logging
import socket
from bisect import bisect_left
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client import PLATFORM_COLLECTOR, PROCESS_COLLECTOR  # noqa: F401 - registered below
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from gamead_core import clock
from gamead_core.config import GameadSettings
from gamead_core.telemetry import conn_metrics
from gamead_core.telemetry.histogram import BUCKETS, WindowedHistogram
from gamead_core.telemetry.metrics_listener import (SCRAPES_CLOSED_FOR_ROOM, SCRAPES_REFUSED, MetricsListener,
                                                     serve_metrics)
from gamead_core.telemetry.tracing import mark_span

log = logging.getLogger(__name__)



def _role_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


#: What the API counts itself (its ``/metrics`` adds its per-app collector beside it).
API_REGISTRY: Final = _role_registry()
#: What a worker counts itself (served on ``worker.metrics_port``).
WORKER_REGISTRY: Final = _role_registry()

OUTCOMES: Final[tuple[str, ...]] = ("completed", "retried", "dead")

ADS_SUBMITTED = Counter(
    "gamead_ads_submitted", "Ads the API accepted (202, not duplicates), by priority.",
    ["priority"], registry=API_REGISTRY,
)
ADS_PROCESSED = Counter(
    "gamead_ads_processed", "Analysis attempts a worker settled, by priority and outcome "
    "(completed; retried: failed, will be retried; dead: moved to the DLQ).",
    ["priority", "outcome"], registry=WORKER_REGISTRY,
)
AD_WAIT = Histogram(
    "gamead_ad_wait_seconds", "Queue wait: seconds from when the ad last became due (submit, DLQ replay, retry) "
    "to the start of the attempt that completed it.",
    ["priority"], buckets=BUCKETS, registry=WORKER_REGISTRY,
)
AD_PROCESSING = Histogram(
    "gamead_ad_processing_seconds", "Seconds the completing analysis attempt took.",
    ["priority"], buckets=BUCKETS, registry=WORKER_REGISTRY,
)
DLQ_ADDED = Counter(
    "gamead_dlq_added", "Ads this process moved to the DLQ, by the class of their last error.",
    ["error_class"], registry=WORKER_REGISTRY,
)
REDELIVERIES = Counter(
    "gamead_redeliveries", "Deliveries a worker received of an ad the queue had delivered before (JetStream's "
    "num_delivered > 1: a retry after its back-off, a hand-back, an ack_wait expiry, a dead worker's ads), "
    "by priority.",
    ["priority"], registry=WORKER_REGISTRY,
)
POISON = Counter(
    "gamead_poison_messages", "Work-stream messages this worker terminated as not an ad (no API published them: "
    "gamead_core.worker.poison), by reason (a fixed set: bad_ad_id, not_a_record, id_mismatch, invalid_record, "
    "no_record).",
    ["reason"], registry=WORKER_REGISTRY,
)
#: where a worker met a newer gamead's record: a delivery it put back, a stranded message its sweep left
LEFT_WHERE: Final[tuple[str, ...]] = ("delivery", "sweep")
LEFT_FOR_NEWER = Counter(
    "gamead_ads_left_for_newer", "Ads whose record a newer gamead wrote (a value this version cannot read) that this "
    "older worker left for a newer one, neither rebuilt nor analysed (README \"Upgrades\"), by where: delivery (put "
    "back every 30 s, so each such ad counts again each time) or sweep (a stranded message left alone).",
    ["where"], registry=WORKER_REGISTRY,
)
REPLAYED = Counter("gamead_replayed", "Ads put back on the queue from the DLQ (replays).", registry=API_REGISTRY)
RECORDS_RECREATED = Counter(
    "gamead_records_recreated", "Ad records a worker found gone at a redelivery (num_delivered > 1: dropped by the "
    "full record bucket, records.max_bytes, or deleted) and created again from the message, its attempts floored "
    "by the deliveries (gamead_core.worker.records).", registry=WORKER_REGISTRY,
)
HTTP_REQUESTS = conn_metrics.HTTP_REQUESTS  # defined there: the protocol counts the requests it refuses unread
HTTP_DURATION = Histogram(
    "gamead_http_request_duration_seconds", "Seconds from request to the end of the response, by route template.",
    ["route"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=API_REGISTRY,
)
#: both roles make direct gets (the API's queue heads and record reads, a worker's record reads)
DIRECT_GET_FALLBACKS = Counter(
    "gamead_direct_get_fallbacks", "Direct gets (any replica) this process asked the stream leader again, by reason "
    "(timeout: no answer within 0.5 s: a slow server, or a replica on a stopped or slow one; no_responders: no direct "
    "gets).",
    ["reason"], registry=API_REGISTRY,
)
WORKER_REGISTRY.register(DIRECT_GET_FALLBACKS)
conn_metrics.register(API_REGISTRY)  # the API's connection bound (gamead_connections_*, gamead_accept_failures)
conn_metrics.register(WORKER_REGISTRY, (SCRAPES_REFUSED, SCRAPES_CLOSED_FOR_ROOM))  # its /metrics listener's bound

_LEVELS = tuple(str(level) for level in range(1, 6))
_recording = True  #: ``metrics.enabled`` of this process (:func:`set_recording`)


def set_recording(on: bool) -> None:
    """Record Prometheus series in this process or not (``metrics.enabled``; set once at start-up)."""
    global _recording
    _recording = on
    conn_metrics.recording = on


def recording() -> bool:
    return _recording
_ERROR_CLASS_MAX = 64  #: longest error class label kept (class names; anything longer is cut)


def _priority(level: int) -> str:
    text = str(level)
    return text if text in _LEVELS else "other"


#: labelled children made once: ``labels()`` costs several times what ``inc()`` does (benchmarks/README.md)
_SUBMITTED = {level: ADS_SUBMITTED.labels(str(level)) for level in range(1, 6)}
_PROCESSED = {(level, outcome): ADS_PROCESSED.labels(str(level), outcome) for level in range(1, 6)
              for outcome in OUTCOMES}
_WAIT = {level: AD_WAIT.labels(str(level)) for level in range(1, 6)}
_PROCESSING = {level: AD_PROCESSING.labels(str(level)) for level in range(1, 6)}
#: prometheus-client's histogram child keeps a ``_sum`` and one ``_buckets`` value per bound of ours plus +Inf
_BY_INDEX = all(len(getattr(h, "_buckets", ())) == len(BUCKETS) + 1 and hasattr(h, "_sum") for h in _WAIT.values())


def _observe_at(child: Any, index: int, value: float) -> None:
    """``child.observe(value)`` with ``value``'s bucket ``index`` (:func:`~.histogram.bucket_index` over
    :data:`BUCKETS`: Prometheus' ``le``) found already: the same two additions, without prometheus-client's scan
    of the bounds; its own ``observe`` where its internals differ."""
    if _BY_INDEX:
        child._sum.inc(value)  # noqa: SLF001
        child._buckets[index].inc(1)  # noqa: SLF001
    else:
        child.observe(value)


def ad_submitted(priority: int) -> None:
    """The API accepted one new ad of ``priority`` (call after the publish was acknowledged)."""
    if _recording:
        child = _SUBMITTED.get(priority)
        (child if child is not None else ADS_SUBMITTED.labels(_priority(priority))).inc()


def record_recreated() -> None:
    """A worker created an ad's record again at a redelivery (``gamead_records_recreated_total``)."""
    if _recording:
        RECORDS_RECREATED.inc()


def count_poison(reason: str) -> None:
    """One work-stream message settled as not an ad outside a delivery (the sweep of stranded messages), for
    ``reason`` (:data:`gamead_core.worker.poison.REASONS`): :data:`POISON`, when this process records."""
    if _recording:
        POISON.labels(reason).inc()


def left_for_newer(where: str) -> None:
    """A worker left an ad to a newer worker (``where``: one of :data:`LEFT_WHERE`): :data:`LEFT_FOR_NEWER`, when
    this process records."""
    if _recording:
        LEFT_FOR_NEWER.labels(where).inc()


def ads_replayed(n: int = 1) -> None:
    """``n`` ads were put back on the queue from the DLQ."""
    if _recording:
        REPLAYED.inc(n)


class WorkerMetrics:
    """What one worker records: outcomes, latency histograms (Prometheus) and the same latencies in
    :class:`~gamead_core.telemetry.histogram.WindowedHistogram`\\ s for the heartbeat."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled  #: Prometheus series recorded (the heartbeat's buckets always are)
        self.processing = WindowedHistogram()
        self.queue_wait = WindowedHistogram()
        #: queue wait per priority level (1-5), made at a level's first ad
        self.queue_wait_by_level: dict[int, WindowedHistogram] = {}
        self.url: str | None = None  #: where this worker's metrics are served (None = not served)
        self._serving: MetricsListener | None = None  #: the listener :meth:`serve` started, until stopped

    def completed(self, priority: int, processing_s: float | None, wait_s: float | None,
                  now: float | None = None) -> None:
        """One ad completed; its processing and queue-wait seconds (None when unknown). Each value's bucket is found
        once for the heartbeat's window and the Prometheus histogram (:func:`_observe_at`): a worker's hot path."""
        now = clock.now() if now is None else now
        mark_span("completed")
        level = priority in _WAIT  # a level (1-5): its own series; else counted under priority="other"
        record = self.enabled
        if record and not level:
            ADS_PROCESSED.labels("other", "completed").inc()
        elif record:
            _PROCESSED[(priority, "completed")].inc()
        if processing_s is not None:
            value = max(0.0, processing_s)
            index = bisect_left(BUCKETS, value)
            self.processing.observe_in(index, value, now)
            if record and level:
                _observe_at(_PROCESSING[priority], index, value)
        if wait_s is not None:
            value = max(0.0, wait_s)
            index = bisect_left(BUCKETS, value)
            self.queue_wait.observe_in(index, value, now)
            if level:  # its own counts, for the per-level wait p95
                by_level = self.queue_wait_by_level.get(priority)
                if by_level is None:  # made once per level (setdefault would build a 60-slot ring per ad)
                    by_level = self.queue_wait_by_level[priority] = WindowedHistogram()
                by_level.observe_in(index, value, now)
                if record:
                    _observe_at(_WAIT[priority], index, value)

    def retried(self, priority: int) -> None:
        mark_span("retried")
        if self.enabled:
            ADS_PROCESSED.labels(_priority(priority), "retried").inc()

    def redelivered(self, priority: int | None) -> None:
        """A delivery with ``num_delivered > 1`` of an ad of ``priority`` (None: not a level's subject) arrived."""
        if self.enabled:
            REDELIVERIES.labels(_priority(priority) if priority is not None else "other").inc()

    def dead(self, priority: int, error_class: str) -> None:
        mark_span("dead", error_class)
        if not self.enabled:
            return
        ADS_PROCESSED.labels(_priority(priority), "dead").inc()
        DLQ_ADDED.labels(error_class[:_ERROR_CLASS_MAX] or "unknown").inc()

    def poison(self, reason: str) -> None:
        """One work-stream message terminated as not an ad, for ``reason`` (one of
        :data:`gamead_core.worker.poison.REASONS`: the caller's fixed set, never a client's string)."""
        if self.enabled:
            POISON.labels(reason).inc()

    async def serve(self, settings: GameadSettings, worker_id: str) -> MetricsListener | None:
        """Serve this process's metrics on ``worker.metrics_port`` (when set and ``metrics.enabled``); sets
        :attr:`url`. Returns the server for :meth:`stop_serving`; the one already serving, if any (``gamead worker``
        serves from before it waits for NATS, so a liveness probe reads it then: attack39b F7). Raises
        :class:`ConfigError` (port taken)."""
        wcfg = settings.worker
        if self._serving is not None or not (wcfg.metrics_port and settings.metrics.enabled):
            return self._serving
        self._serving, self.url = await serve_worker_metrics(wcfg.metrics_host, wcfg.metrics_port)
        log.info("worker metrics on %s", self.url, extra={"worker_id": worker_id})
        return self._serving

    async def stop_serving(self, server: MetricsListener | None) -> None:
        """Close ``server`` if it still serves (a second call for it does nothing)."""
        if server is not None and server is self._serving:
            self._serving = None
            await server.close()

    def buckets(self, now: float | None = None) -> dict[str, Any]:
        """The heartbeat's ``latencyBuckets`` fields: ``processing`` and ``queue_wait`` counts of the window,
        ``queue_wait_by_level`` (level → counts) for the levels with an ad in the window only, and ``ranges``
        (series → ``[min, max]`` seconds observed in the window)."""
        now = clock.now() if now is None else now
        by_level = {p: c for p, h in sorted(self.queue_wait_by_level.items()) if any(c := h.counts(now))}
        series = {"processing": self.processing, "queueWait": self.queue_wait,
                  **{f"queueWait.{p}": self.queue_wait_by_level[p] for p in by_level}}
        ranges = {k: r for k, h in series.items() if (r := h.extremes(now)) is not None}
        return {"processing": self.processing.counts(now), "queue_wait": self.queue_wait.counts(now),
                "queue_wait_by_level": by_level, "ranges": ranges}


def api_metrics_url(host: str, port: int) -> str:
    """The ``/metrics`` URL an API bound to ``host:port`` advertises in its heartbeat (``/v1/workers``)."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/metrics"


async def serve_worker_metrics(host: str, port: int) -> tuple[MetricsListener, str]:
    """Serve :data:`WORKER_REGISTRY` as Prometheus text on ``http://host:port/metrics`` from this event loop (uvicorn,
    bounded connections, time and bytes: :mod:`gamead_core.telemetry.metrics_listener`). Returns (listener, the URL
    to advertise).

    Raises :class:`~gamead_core.errors.ConfigError` (:func:`~gamead_core.listen.listen_refusal`) when the port
    cannot be bound (taken, or not ours to use)."""
    listener = await serve_metrics(WORKER_REGISTRY, host, port)
    return listener, api_metrics_url(host, listener.port)


__all__ = [
    "AD_PROCESSING",
    "AD_WAIT",
    "ADS_PROCESSED",
    "ADS_SUBMITTED",
    "API_REGISTRY",
    "DIRECT_GET_FALLBACKS",
    "DLQ_ADDED",
    "HTTP_DURATION",
    "HTTP_REQUESTS",
    "LEFT_FOR_NEWER",
    "LEFT_WHERE",
    "OUTCOMES",
    "POISON",
    "REDELIVERIES",
    "REPLAYED",
    "WORKER_REGISTRY",
    "WorkerMetrics",
    "ad_submitted",
    "ads_replayed",
    "api_metrics_url",
    "count_poison",
    "left_for_newer",
    "recording",
    "serve_worker_metrics",
    "set_recording",
]
