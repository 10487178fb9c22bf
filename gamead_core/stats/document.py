"""The ``/v1/stats`` and ``/v1/workers`` documents, rendered from a sampler's memory (no I/O).

Field names follow the README's Glossary: per level ``pending`` (never delivered), ``ackPending``
(delivered, not yet acknowledged), ``redelivered``, ``oldestAgeSeconds``; ``rates`` are per second over the
last ``windowSeconds`` (the seconds between the samples they divide by: 60 ± half a sample interval, or what a
younger sampler has). ``topology`` and ``storage`` come from the API node's link (its topology watch and storage
probe), read from memory at answer time.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from gamead_core import names
from gamead_core.clock_offset import measured
from gamead_core.models import utc_iso
from gamead_core.redact import redact_text, without_servers
from gamead_core.registry import Percentiles, node_state
from gamead_core.registry.nodes import server_started
from gamead_core.stats.dlq_room import dlq_section
from gamead_core.stats.rates import aging_horizon
from gamead_core.telemetry.histogram import WINDOW

if TYPE_CHECKING:
    from gamead_core.stats.sampler import QueueSampler


def node_states(sampler: QueueSampler, now: float | None = None) -> list[tuple[Any, str]]:
    """``(registry entry, state)`` of every node the views list, as seen at ``now`` (epoch s, default the
    sampler's clock): the live ones with :func:`_state` (``ok``/``idle``/``stuck``/``late``/``draining``/
    ``quiet``), then those whose entry expired a short while ago, ``gone`` (:mod:`gamead_core.registry.gone`). The
    one decision of a node's state for ``/v1/workers``, ``gamead workers``, ``top`` and ``/metrics``'
    ``gamead_workers``."""
    now = sampler.clock() if now is None else now
    at = datetime.fromtimestamp(now, timezone.utc)
    out = [(node, _state(sampler, node, at)) for node in _nodes(sampler)]
    return out + [(g.node, "gone") for g in sampler.vanished.gone.values()]


def node_counts(shown: list[tuple[Any, str]]) -> dict[str, int]:
    """``/v1/stats`` ``nodes``' counts of ``shown`` (:func:`node_states`), no node counted twice in a sum of
    disjoint fields. ``api`` / ``workers``: the live ones of that role (registry entry present, in any state:
    late and stuck included; gone ones not). ``idle`` / ``stuck`` / ``draining`` / ``late`` / ``quiet``: the workers
    in that state (parts of ``workers``), ``gone``: the gone workers (not in ``workers``), each equal to ``/metrics``'
    ``gamead_workers{state}``. ``apiLate`` / ``apiStuck`` (parts of ``api``) and ``apiGone`` (not in ``api``): the
    same for API nodes. Pure."""
    def count(role: str, states: tuple[str, ...]) -> int:
        return sum(1 for node, state in shown if node.role == role and state in states)

    live = ("ok", "idle", "stuck", "late", "draining", "quiet")
    return {"api": count("api", live), "workers": count("worker", live),
            **{state: count("worker", (state,)) for state in ("stuck", "draining", "idle", "late", "quiet", "gone")},
            **{f"api{state.title()}": count("api", (state,)) for state in ("late", "stuck", "gone")}}


def nodes_document(sampler: QueueSampler, now: float | None = None) -> list[dict[str, Any]]:
    """The nodes as wire dicts, with ``heartbeatAgeSeconds`` and the state as seen now (:func:`node_states`):
    the live ones, and those whose entry expired a short while ago (``gone``), sorted by role then id."""
    now = sampler.clock() if now is None else now
    out = [_node_item(node, state, now) for node, state in node_states(sampler, now)]
    out.sort(key=lambda n: (n["role"], n["id"]))
    return out


def _state(sampler: QueueSampler, node: Any, at: datetime) -> str:
    """:func:`~gamead_core.registry.node_state` under this API's settings: a heartbeat older than the ttl is stuck,
    one older than 2.5 of the node's beats (this API's for an older node that does not say) late, whatever the
    node last said; plus the age of the registry read the answer shows (up to one sample interval: reads that
    keep failing must not keep a silent node from ever turning late)."""
    registry, read_at = sampler.settings.registry, sampler.registry_read_at
    read_age = 0.0 if read_at is None else min(max(0.0, at.timestamp() - read_at), sampler.interval)
    return node_state(node, at, sampler.settings.worker.task_timeout, registry.ttl, registry.heartbeat_interval,
                      read_age=read_age)


def _node_item(node: Any, state: str, now: float) -> dict[str, Any]:
    item = node.model_dump(mode="json")
    item["state"] = state
    item["heartbeatAgeSeconds"] = round(max(0.0, now - node.heartbeat_at.timestamp()), 1)
    # how long its process runs (``processed``/``failed`` count since its start: a restart keeps the id), from its
    # own monotonic uptime at its beat (``startedAt`` is its host clock's: a host 5 min behind read 5 min more)
    item["uptimeSeconds"] = None if state == "gone" else round(max(0.0, now - server_started(node)), 1)
    if state == "gone":  # its process no longer beats: the address it announced may be served by another
        item["metricsUrl"] = None  # (a restarted API reuses its port: attack26 F7)
    if item.get("lastError"):  # a status text: what failed, never which server (redact.without_servers)
        item["lastError"] = without_servers(item["lastError"])
    return item


def workers_document(sampler: QueueSampler, role: str | None = None) -> dict[str, Any]:
    """``GET /v1/workers``: the live nodes (of ``role``, or all), with what went wrong reading them."""
    now = sampler.clock()
    items = [n for n in nodes_document(sampler, now) if role is None or n["role"] == role]
    return {
        "items": items,
        "count": len(items),
        "generatedAt": utc_iso(now),
        "ttlSeconds": sampler.settings.registry.ttl,
        # when this API node last read the registry; None: never (``items`` empty says nothing of the nodes)
        "readAt": _read_at(sampler),
        "error": None if sampler.nodes_ok else without_servers(_registry_error(sampler)),
    }


def _nodes(sampler: QueueSampler) -> tuple[Any, ...]:
    """The registry entries at its last read (none before the first)."""
    return sampler.registry_nodes or ()


def _read_at(sampler: QueueSampler) -> str | None:
    return None if sampler.registry_read_at is None else utc_iso(sampler.registry_read_at)


def _registry_error(sampler: QueueSampler) -> str:
    why = next((e for e in sampler.errors if e.startswith(("registry", "NATS"))), None)
    if sampler.registry_read_at is None:  # never read: not "no node beat"
        why = (why or "").removeprefix("registry: ") or "NATS not reached since this API node started"
        return f"registry not read yet: {why}"
    return why or "registry unavailable"


def stats_document(sampler: QueueSampler, history: int | None = None) -> dict[str, Any]:
    """The ``/v1/stats`` document; ``history`` = most ring points returned (all when None)."""
    now = sampler.clock()
    last = sampler.latest
    step = sampler.settings.queue.aging_step
    since = now - last.t if last else 0.0
    reading = last.reading if last else None

    levels = []
    unreadable = dict(reading.unreadable) if reading else {}
    for level in names.LEVELS:
        depth = reading.level(level) if reading else None
        age = None if depth is None or depth.oldest_age is None else round(depth.oldest_age + since, 3)
        horizon = aging_horizon(level, step)
        levels.append({
            "priority": level,
            "pending": depth.pending if depth else None,
            "ackPending": depth.ack_pending if depth else None,
            "redelivered": depth.redelivered if depth else None,
            "oldestAgeSeconds": age,
            "agingHorizonSeconds": horizon,
            "overHorizon": age is not None and age > horizon,
            "waitP95Ms": last.level_wait_p95.get(level) if last else None,
            # the p95 is read off histogram buckets: the bucket it lies in and the range observed
            "waitP95Estimate": last.level_wait_estimate.get(level) if last else None,
            "readable": level not in unreadable if reading and reading.connected else None,
            "error": unreadable.get(level),
        })

    def total(key: str) -> int | None:
        """The sum over the levels that could be read (None when none could: ``unreadableLevels`` says
        which were left out)."""
        values = [lv[key] for lv in levels if lv[key] is not None]
        return sum(values) if values else None  # type: ignore[arg-type]

    shown = node_states(sampler, now)  # the one decision of a node's state (/v1/workers, /metrics alike)
    workers = [n for n, state in shown if n.role == "worker" and state != "gone"]
    stream = _stream(sampler)
    cache = sampler.extra_values.get("cache") or {}
    return {
        "generatedAt": utc_iso(now),
        "sampledAt": utc_iso(last.t) if last else None,
        "node": sampler.node_id,
        # this node's host clock against nats-server's (s, + = host behind; None before its first sample)
        **dict(zip(("clockOffsetSeconds", "clockErrorSeconds"), measured())),
        "intervalSeconds": sampler.interval,
        "nats": _nats_info(sampler),
        "queue": {
            "agingStepSeconds": step,
            "levels": levels,
            "pending": total("pending"),
            "ackPending": total("ackPending"),
            "redelivered": total("redelivered"),
            "unreadableLevels": sorted(unreadable),
            "messages": stream[0],
            "bytes": stream[1],
            # work streams read and summed: the queue's partitions (GAMEAD_ADS's metadata), else queue.partitions
            "partitions": reading.partitions if reading and reading.connected else sampler.settings.queue.partitions,
        },
        # the seconds the rates were divided by (the span between the two samples they are taken between, to the µs:
        # RATE_WINDOW ± half a sample interval, or less while the sampler is younger); the rates unrounded, so
        # round(rate × windowSeconds) = count (attack32b F2: to 3 decimals, 2 ads read 1.98)
        "rates": {"windowSeconds": None if sampler.rate_window is None else round(sampler.rate_window, 6),
                  **sampler.rates, "perWorkerBasis": sampler.per_worker_basis},
        "latency": {
            "windowSeconds": WINDOW,  # the workers' own histogram window (not the sampler's age)
            "queueWaitMs": last.queue_wait.model_dump() if last else Percentiles().model_dump(),
            "processingMs": last.processing.model_dump() if last else Percentiles().model_dump(),
        },
        "dlq": dlq_section(last.dlq_size if last else None, sampler.dlq_bytes, sampler.dlq_max),  # full: F5
        "records": sampler.records,
        "nodes": {**node_counts(shown),
            "inFlight": sum(n.in_flight for n in workers),
            "concurrency": sum(n.concurrency for n in workers),
            "readAt": _read_at(sampler),  # None: the registry was never read (the counts say nothing)
            "error": None if sampler.nodes_ok else without_servers(_registry_error(sampler)),
        },
        "autoscaler": sampler.extra_values.get("autoscaler"),
        # the link's own read-outs: the topology watch (objects missing, incompatible, recreated) and the
        # storage probe (does JetStream store writes?); None before NATS was first reached
        "topology": _link_section(sampler.link, "topology_status"),
        "storage": _link_section(sampler.link, "storage_status"),
        # redis_stats(app) gives {cache, redis, ratelimit}: each becomes a top-level section
        **{k: cache.get(k) for k in ("cache", "redis", "ratelimit")},
        "errors": [without_servers(e) for e in sampler.errors],
        "history": sampler.history.tail(history, sampler.interval),
    }


def _stream(sampler: QueueSampler) -> tuple[int | None, int | None]:
    """(messages, bytes) of the work stream at the last sample that could read it."""
    for sample in reversed(sampler.ring):
        if sample.reading.messages is not None:
            return sample.reading.messages, sample.reading.bytes
    return None, None


def _nats_info(sampler: QueueSampler) -> dict[str, Any]:
    nc = sampler.link.nc
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
        "storage": sampler.account,
        "reads": _reads_info(sampler),
        "error": None if connected else without_servers(redact_text(getattr(sampler.link, "last_error", None)
                                                                    or "reconnecting")),
    }


def _reads_info(sampler: QueueSampler) -> dict[str, Any] | None:
    """``nats.reads``: the API node's operator-reads connection (``connected``, ``state``, ``reconnects``:
    :meth:`gamead_core.api.read_conn.ReadConnection.status`); None on a node without one."""
    reads = getattr(sampler.link, "reads", None)
    stale_after = getattr(getattr(getattr(sampler.link, "settings", None), "nats", None), "stale_after", None)
    return None if reads is None or stale_after is None else reads.status(stale_after)


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
    """The link's ``topology`` or ``storage`` section; its texts (an error, a failed write's detail) name no
    server (:func:`gamead_core.redact.without_servers`), as ``/readyz``'s checks."""
    read = getattr(link, name, None)
    return _no_servers(read()) if callable(read) else None


def _no_servers(value: Any) -> Any:
    if isinstance(value, str):
        return without_servers(value)
    if isinstance(value, dict):
        return {k: _no_servers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_servers(v) for v in value]
    return value


__all__ = ["node_counts", "node_states", "nodes_document", "records_section", "stats_document", "workers_document"]
