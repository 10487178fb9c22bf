"""The API's read-outs as Prometheus series, collected at scrape time from memory (no NATS call).

Queue gauges come from the one sampler (:class:`gamead_core.stats.StatsSampler`, once a second), so
``/metrics``, ``/v1/stats`` and the autoscaler read the same numbers: Prometheus sees them at most one
sampling interval old. A series whose value is unknown (NATS down, level unreadable) is left out rather than
reported as 0: an absent series is what ``absent()`` alerts and Grafana gaps are made for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gamead_core.stats.document import node_states

log = logging.getLogger(__name__)

#: the ``state`` label of ``gamead_workers``: as ``/v1/workers`` shows them
#: (:func:`~gamead_core.stats.document.node_states`)
WORKER_STATES = ("ok", "idle", "stuck", "late", "draining", "quiet", "gone")
BREAKER_STATES = ("closed", "open", "half_open")


class ApiCollector(Collector):
    """Series of one API app, read from ``app.state`` (sampler, cache, limiter, Redis link) at scrape time."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        """Every family, section by section: a section that raises (a value no series can hold, say) is left out
        and logged once per section and error, never the whole page (attack31b F5: one shared counter past
        float range made every scrape a 500, with two tracebacks)."""
        state = self.app.state
        sampler = getattr(state, "stats_sampler", None)
        sample = sampler.latest if sampler is not None else None
        link = getattr(state, "link", None)
        sections = (("queue", lambda: _queue(sample, link)), ("attempts lost", lambda: _lost(sample)), ("workers", lambda: _workers(sampler, sample)),
                    ("autoscaler", lambda: _autoscaler(sampler)), ("cache", lambda: _cache_and_limits(state)))
        for name, section in sections:
            try:
                families = list(section())
            except Exception as exc:  # noqa: BLE001 - one section's bad value never fails the page
                if _said.get(name) != repr(exc):
                    _said[name] = repr(exc)
                    log.warning("/metrics: the %s series are left out: %r (said once until the error changes)",
                                name, exc)
                continue
            _said.pop(name, None)
            yield from families


_said: dict[str, str] = {}  #: section → the error last logged for it


def _queue(sample: Any, link: Any) -> Iterator[Any]:
    up = GaugeMetricFamily("gamead_nats_connected", "1 when the API's link to NATS works (/readyz checks.nats ok: "
                           "connected, and the server answers its PINGs) and its last sample reached NATS, else 0.")
    yield up
    reached = sample is not None and sample.reading.connected
    # the link's own judgement, as /readyz says it: a stalled server (SIGSTOP, a blackholed network) keeps the TCP
    # connection, and the sample read before it, for ~50 s; the link sees its PING unanswered within
    # nats.stale_after / 2 (attack39b F12: the gauge said 1 for 45-50 s while /readyz said unavailable)
    works = link is None or not hasattr(link, "readiness") or link.readiness().get("nats") == "ok"
    up.add_metric([], 1.0 if reached and works else 0.0)

    backlog = GaugeMetricFamily("gamead_queue_backlog", "Ads waiting on a level (consumer num_pending).",
                                labels=["priority"])
    # ack pending, not "in flight": it counts prefetched ads and ads waiting out a retry back-off too;
    # "in flight" is a worker's busy slots (/v1/stats nodes.inFlight, the IN-FL column) — attack25d #3
    ack_pending = GaugeMetricFamily("gamead_queue_ack_pending",
                                    "Ads delivered to a worker and not yet acknowledged (JetStream "
                                    "num_ack_pending: running, prefetched, or waiting out a retry back-off).",
                                    labels=["priority"])
    oldest = GaugeMetricFamily("gamead_queue_oldest_age_seconds",
                               "Seconds the oldest waiting ad of a level has waited, pending, held unstarted "
                               "by a worker (as of its last heartbeat) or waiting for redelivery; 0 when none waits.",
                               labels=["priority"])
    if sample is not None:
        for ls in sample.reading.levels:
            label = [str(ls.level)]
            backlog.add_metric(label, float(ls.pending))
            ack_pending.add_metric(label, float(ls.ack_pending))
            oldest.add_metric(label, float(ls.oldest_age or 0.0))
    yield backlog
    yield ack_pending
    yield oldest

    dlq = GaugeMetricFamily("gamead_dlq_entries", "Ads in the dead-letter queue.")
    if sample is not None and sample.dlq_size is not None:
        dlq.add_metric([], float(sample.dlq_size))
    yield dlq


def _lost(sample: Any) -> Iterator[Any]:
    # attempts charged for a crashed worker and retried: no worker lives to count them (attack29a F11)
    lost = CounterMetricFamily("gamead_attempts_lost", "Analysis attempts charged for a worker that crashed during "
                               "them (WorkerLost) and retried, cluster-wide (every API reports the same: max).")
    if sample is not None and sample.reading.lost_attempts is not None:
        lost.add_metric([], float(sample.reading.lost_attempts))
    yield lost


def _workers(sampler: Any, sample: Any) -> Iterator[Any]:
    workers = GaugeMetricFamily("gamead_workers", "Workers /v1/workers lists, by the state it shows them in "
                                "(late: heartbeat overdue; quiet: told to take no new ad; gone: registry entry "
                                "expired).", labels=["state"])
    # the nodes and states /v1/workers lists (node_states: the last registry read, states as seen now, and the
    # gone ones), so the metric and the views never disagree about a node
    if sampler is not None and sampler.nodes_ok and sampler.registry_nodes is not None:
        counts = dict.fromkeys(WORKER_STATES, 0)
        for node, shown in node_states(sampler):
            if node.role == "worker" and shown in counts:
                counts[shown] += 1
        for name, n in counts.items():
            workers.add_metric([name], float(n))
    yield workers


def _autoscaler(sampler: Any) -> Iterator[Any]:
    doc = None
    if sampler is not None:
        read = sampler.extras.get("autoscaler")
        try:
            doc = read() if read is not None else None
        except Exception:  # noqa: BLE001 - a scrape never fails on one section
            doc = None
    desired = GaugeMetricFamily("gamead_autoscaler_desired_replicas", "Workers the autoscaler last asked for.")
    current = GaugeMetricFamily("gamead_autoscaler_current_replicas", "Workers the autoscaler last saw running.")
    maximum = GaugeMetricFamily("gamead_autoscaler_max_replicas", "The autoscaler's ceiling (autoscaler.max_replicas).")
    # what Prometheus can page on while the leader's calls fail (attack39b F3: a 403 withdrew desired and current,
    # and no series said anything was wrong): the ``error`` and ``stale`` of ``gamead scale status``
    failing = GaugeMetricFamily("gamead_autoscaler_failing", "1 while the autoscaler leader's last scale call or "
                                "read failed (gamead scale status: error), else 0.")
    stale = GaugeMetricFamily("gamead_autoscaler_stale", "1 when no autoscaler leader has recorded a decision for "
                              "3 intervals (gamead scale status: stale), else 0.")
    if doc:
        for fam, key in ((desired, "desired"), (current, "current"), (maximum, "maxReplicas")):
            if isinstance(doc.get(key), (int, float)):
                fam.add_metric([], float(doc[key]))
        failing.add_metric([], 1.0 if doc.get("error") else 0.0)
        stale.add_metric([], 1.0 if doc.get("stale") else 0.0)
    yield from (desired, current, maximum, failing, stale)


def _cache_and_limits(state: Any) -> Iterator[Any]:
    cache = getattr(state, "cache", None)
    if cache is not None:
        hits = CounterMetricFamily("gamead_cache_hits", "Reads of a final ad record answered by the cache.")
        hits.add_metric([], float(cache.hits))
        misses = CounterMetricFamily("gamead_cache_misses", "Reads of an ad record the cache could not answer.")
        misses.add_metric([], float(cache.misses))
        yield hits
        yield misses
    limiter = getattr(state, "limiter", None)
    if limiter is not None:
        limited = CounterMetricFamily("gamead_ratelimit_rejections", "Requests refused with 429 rate_limited.")
        limited.add_metric([], float(limiter.limited))
        yield limited
    link = getattr(state, "redis", None)
    breaker = GaugeMetricFamily("gamead_redis_circuit_breaker_state",
                                "1 for the Redis circuit breaker's current state, 0 for the others.",
                                labels=["state"])
    if link is not None:
        for name in BREAKER_STATES:
            breaker.add_metric([name], 1.0 if link.breaker.state == name else 0.0)
    yield breaker


__all__ = ["ApiCollector", "BREAKER_STATES", "WORKER_STATES"]
