"""The registry's wire types: one heartbeat (:class:`NodeInfo`), camelCase on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from gamead_core.models import _WIRE
from gamead_core.shared_numbers import Count
from gamead_core.telemetry.histogram import LatencyBuckets

Role = Literal["api", "worker"]
#: a node's own state (``ok``, ``idle``, ``stuck``, ``draining``, ``quiet``: a worker told to take no new ad,
#: gamead_core.worker.quiet) or, as the API shows it, also ``late`` (its heartbeat overdue) and ``gone`` (its entry
#: expired: silent past ``registry.ttl``)
State = Literal["ok", "idle", "stuck", "draining", "quiet", "late", "gone"]


class Percentiles(BaseModel):
    """p50/p95/p99 in milliseconds of ``count`` samples (all None when there are none)."""

    model_config = _WIRE

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    count: Count = 0
    #: set when the figures are estimates read off histogram buckets (the fleet's, ``/v1/stats``):
    #: ``{"method": "histogram buckets", "bucketMs": {"p50": [lo, hi], …}, "observedMs": [min, max]}``;
    #: left out of the JSON when None (a worker's own figures are exact)
    estimate: dict[str, Any] | None = Field(default=None, exclude_if=lambda v: v is None)


class HeldAd(BaseModel):
    """One ad a worker holds: pulled and not yet settled (acknowledged or handed back)."""

    model_config = _WIRE

    ad_id: str
    delivery: str  #: ``"<stream seq>.<delivery count>"`` (see gamead_core.worker.budget.delivery_id)
    ack_subject: str  #: the delivery's reply subject: whoever notices the worker's death ``nak``\ s it there
    #: True while the delivery may be analysed *without* a ``processing`` mark in its record (a first
    #: delivery on the fast path, gamead_core.worker.handle): whoever recovers the dead worker counts it as
    #: running (gamead_core.worker.budget.held_state). False for a delivery whose record tells (the slow path).
    started: bool = False


#: A node's id as the registry takes one: a worker id (:data:`gamead_core.ids.WORKER_ID_PATTERN`) or an API's
#: ``api-<host>-<pid>-<6 chars>``, at most 255 characters of the same set. Its registry key and every subject built
#: from it stay far below nats-server's 4 KiB control line: an entry naming a 5,000-character id closed the NATS
#: connection of the API and of the worker holding the reaper lease ("maximum control line exceeded") once it
#: expired (attack40a F7); one with a character a key cannot hold (``U+200B``) was reaped as expired while it was
#: being refreshed.
NODE_ID_PATTERN = r"^[A-Za-z0-9][-_.:@=A-Za-z0-9]{0,254}$"


class NodeInfo(BaseModel):
    """One heartbeat: who the node is and how it is doing. camelCase on the wire. An entry whose ``id`` is not in
    :data:`NODE_ID_PATTERN` (or ``host`` over 255 characters) is not a node's: refused when read (skipped)."""

    model_config = _WIRE

    id: str = Field(pattern=NODE_ID_PATTERN)
    role: Role
    host: str = Field(max_length=255)
    pid: Count
    version: str
    started_at: datetime
    heartbeat_at: datetime
    concurrency: Count = 0
    in_flight: Count = 0
    processed: Count = 0
    failed: Count = 0  #: a worker's failed attempts since it started: retried + dead
    #: of ``failed``, the ads a worker dead-lettered (0 from an older worker, which does not send it)
    dead: Count = 0
    last_error: str | None = None
    processing_ms: Percentiles = Percentiles()
    queue_wait_ms: Percentiles = Percentiles()
    last_progress_at: datetime | None = None
    state: State = "ok"
    task_timeout: float | None = None  #: the node's own ``worker.task_timeout`` (for the stuck check)
    #: the node's own ``registry.heartbeat_interval``, seconds (for the late check); None from an older node
    heartbeat_interval: float | None = None
    #: A worker's held ads (written before their analyses start), so that whoever notices its death can
    #: hand them to other workers at once (gamead_core.worker.reaper).
    holding: list[HeldAd] = []
    #: A worker's deliveries handed back (``nak`` at once) in its last 30 s, JetStream's ack pending until a pull takes
    #: them again: ``<stream>.<consumer>`` → stream sequences (gamead_core.worker.handed); the doctor counts them held.
    #: Empty (left out of the JSON) from an API node, an older worker, or one that handed none back lately.
    handed_back: dict[str, list[int]] = Field(default={}, exclude_if=lambda v: not v)
    #: the level consumers' live ``ack_wait`` a worker paces its in-progress acks by (its own ``queue.ack_wait`` until
    #: it knows the live one; gamead_core.worker.keepalive): when its ads return by themselves
    ack_wait: float | None = None
    metrics_url: str | None = None  #: where the node's Prometheus metrics are served (gamead_core.telemetry)
    latency_buckets: LatencyBuckets | None = None  #: a worker's last-minute histograms (summed by /v1/stats)
    #: A worker's process CPU per settled ad, milliseconds, over its last ~30 s of work
    #: (gamead_core.worker.counters.CpuPerAd): the autoscaler's CPU bound on its capacity. None (or absent,
    #: from an older worker) while unknown.
    cpu_per_ad_ms: float | None = None
    #: the node's own ``queue.partitions``; None from an older node. ``gamead doctor`` names a node whose setting
    #: differs from the queue's, and work streams no live worker pulls from (gamead_core.doctor.pullers)
    partitions: Count | None = None
    #: A worker's ads held unstarted (its long polls' inboxes, its prefetch buffer; first deliveries): priority →
    #: when the oldest of them was submitted (the work stream's time stamp). As of the beat or the held-ads
    #: announcement (gamead_core.worker.announce). The sampler counts them as waiting while the entry is fresh
    #: (gamead_core.stats.unstarted).
    #: Empty from an API node, an older worker, or one that holds none.
    unstarted_since: dict[int, datetime] = {}
    #: nats-server's clock minus this node's host clock at the beat, seconds (+300: the host is 5 min behind;
    #: gamead corrects it, :mod:`gamead_core.clock`); None before its first sample or from an older node
    clock_offset_seconds: float | None = None
    clock_error_seconds: float | None = None  #: the offset's uncertainty, ± seconds (half the sample's round trip)
    #: seconds its process has run at the beat, on its own monotonic clock (``startedAt`` is its host clock's: an
    #: incarnation stamp, off by the host's skew); None from an older node
    uptime_seconds: float | None = None
    #: the create fence this node keeps (:data:`CREATE_FENCE`; attack33b F1): its API withdraws an unanswered create,
    #: and its reaper queues a dead API's record again, only by compare-and-set. None from an older node, whose
    #: reaper publishes without it and whose API deletes blind (gamead doctor: ``unfenced_node``)
    fence: Count | None = None
    #: a worker told to take no new ad (``gamead workers quiet``, gamead_core.worker.quiet): it pulls nothing and
    #: finishes what it runs; False from an API node, a worker taking ads, or an older worker
    quiet: bool = False
    #: a worker's Kubernetes pod (env ``POD_NAME``, set from ``metadata.name`` by the downward API in
    #: manifests/base/worker.yaml): the pod a scale-down marks to go first when the worker is quiet or idle
    #: (gamead_core.scaling.removal). None outside Kubernetes (``gamead up``), from an API node or an older worker
    pod: str | None = Field(default=None, max_length=253)


#: the create fence's version (gamead_core.store.create_fence, gamead_core.worker.orphan_reput) every heartbeat says
CREATE_FENCE = 1


__all__ = ["CREATE_FENCE", "HeldAd", "NodeInfo", "Percentiles", "Role", "State"]
