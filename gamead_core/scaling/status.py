"""The autoscaler's documents, pure (no I/O): ``GET /v1/scale`` (:func:`status_document`), the shared state
the leader writes (:func:`state_document`) and its ``observed`` figures (:func:`observed_document`)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.models import utc_iso
from gamead_core.scaling.applies import applied_by
from gamead_core.scaling.apply import tick_calls_seconds
from gamead_core.scaling.lease import Lease, lease_ttl
from gamead_core.scaling.stacks import same_stack
from gamead_core.scaling.store import Override, active_override, iso
from gamead_core.stats.sampler import Sample

#: ``state`` older than this many intervals is shown as stale (its leader is gone or stuck); a leader backing off
#: after a failure says when it records next (``nextInSeconds``), and is allowed that instead of one interval; with
#: the kubernetes backend, while a leader holds the lease, what every call one tick may make can take
#: (:func:`~gamead_core.scaling.apply.tick_calls_seconds`: a GET, a scale-down's pod marks, up to 3 PATCHes with a
#: read between, a read-back after a doubt; each call cut at 2 × ``request_timeout``), so a live leader in a slow tick
#: is not stale (review30 F12: one ``request_timeout`` was allowed; a tick may make 11 calls); with no leader, one
#: ``request_timeout``.
STALE_INTERVALS = 3.0


def _seconds(value: Any, default: float | None) -> float | None:
    """A number of the shared state document as seconds; ``default`` for anything else (a string, a list, a bool:
    a value gamead did not write, read as absent rather than failing ``GET /v1/scale``, attack31b F5's kind). Pure."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1e12 < value < 1e12:
        return default
    return float(value)


def status_document(
    state: dict[str, Any] | None,
    lease: Lease | None,
    override: Override | None,
    *,
    now: float,
    settings: AutoscalerSettings,
    node_id: str | None = None,
    registered: Collection[str] | None = None,
    stack: str | None = None,
) -> dict[str, Any]:
    """The ``GET /v1/scale`` answer from the shared state, the lease and the override (all may be None).
    ``registered``: the ids of the live registry entries (None: not read). ``leader.registered`` says whether the
    lease's holder is one of them: False for a holder that is gone (attack31b F2: ``api-deadnode-999`` was shown as
    the leader for an hour); None when not known, or for ``gamead up``'s own autoscaler (``up-…``), which keeps no
    registry entry. ``stack``: the ``gamead up`` stack this API belongs to (None: none); ``leader.stack`` is the
    leader's, ``leader.thisStack`` whether it is this one (False: another stack's leader moves its own workers, not
    this stack's; None: not known; :func:`gamead_core.scaling.stacks.same_stack`, attack44 F4)."""
    st = state or {}
    leader = None
    if lease is not None and not lease.expired(now):
        known = registered is not None and not lease.holder.startswith("up-")
        leader = {"id": lease.holder, "since": iso(lease.acquired_at), "expiresAt": iso(lease.expires_at),
                  "expiresInSeconds": round(max(0.0, lease.expires_at - now), 2),
                  "registered": (lease.holder in registered) if known and registered is not None else None,
                  "stack": lease.stack, "thisStack": same_stack(lease.holder, lease.stack, stack)}
    updated = _seconds(st.get("t"), None)
    interval = _seconds(st.get("intervalSeconds"), None) or settings.interval
    age = round(max(0.0, now - updated), 2) if updated is not None else None
    # stale: the leader missed its own next record (an interval, or its back-off after a failure, and then the time
    # its tick's Kubernetes calls may take: attack30b F3, review30 F12; see STALE_INTERVALS) by 2 intervals
    due = max(interval, _seconds(st.get("nextInSeconds"), None) or interval)
    if (st.get("backend") or settings.backend) == "kubernetes":
        timeout = settings.kubernetes.request_timeout
        due += tick_calls_seconds(timeout) if leader is not None else timeout
    ov = active_override(override, now)
    doc = {
        "backend": st.get("backend") or settings.backend,
        "leader": leader,
        "current": st.get("current"),
        "desired": st.get("desired"),
        "reason": st.get("reason"),
        "applied": st.get("applied"),
        "error": st.get("error"),
        "draining": st.get("draining"),
        "minReplicas": st.get("minReplicas", settings.min_replicas),
        "maxReplicas": st.get("maxReplicas", settings.max_replicas),
        "intervalSeconds": interval,
        "leaseTtlSeconds": st.get("leaseTtlSeconds", lease_ttl(settings.interval)),
        "updatedAt": st.get("updatedAt"),
        "ageSeconds": age,
        "stale": age is None or age > due + (STALE_INTERVALS - 1) * interval,
        "observed": st.get("observed"),
        "override": ov.wire(now) if ov is not None else None,
        "decisions": list(st.get("decisions") or []),
        "node": node_id,
    }
    doc["appliedBy"] = applied_by(doc)  # who acts on the override, as scale set says it (attack44c F5)
    return doc


def _oldest(reading: Any) -> float | None:
    """Seconds the oldest waiting ad of the readable levels has waited (pending, or held unstarted by a worker:
    gamead_core.stats.unstarted); None when none waits."""
    ages = [d.oldest_age or 0.0 for d in reading.levels if d.pending or d.oldest_age is not None]
    return round(max(ages), 3) if ages else None


def observed_document(sample: Sample, rates: dict[str, float | None],
                      basis: dict[str, Any] | None = None, window: float | None = None) -> dict[str, Any]:
    """``observed`` of ``/v1/scale``: the figures the decision used, named as ``/v1/stats`` names them.
    ``basis`` is how ``perWorkerPerSec`` was derived (``QueueSampler.per_worker_basis``: ``bound`` is
    ``measured``, ``cpu``, ``latency`` or ``mixed``, with ``cpuPerAdMs``, ``concurrency``, ``p50Ms``…).
    ``window``: the seconds the rates are over (``QueueSampler.rate_window``, ``windowSeconds`` as in
    ``/v1/stats``' ``rates``): 60, or less while the leader's sampler is younger (an API restarted 11 s ago: 11).
    A rate the policy used though none was measured replaces ``perWorker*`` (:attr:`ScalingDecision.per_worker`)."""
    reading = sample.reading
    workers = reading.workers
    return {
        "sampledAt": utc_iso(reading.t),  # as /v1/stats writes it
        "pending": reading.pending or 0,
        "ackPending": reading.ack_pending or 0,
        "pendingByLevel": {str(d.level): d.pending for d in reading.levels},
        "unreadableLevels": [lvl for lvl, _ in reading.unreadable],
        #: of an unreadable level, what its readable partitions hold (the autoscaler counts it, a lower bound)
        "partialPendingByLevel": {str(d.level): d.pending for d in reading.partial},
        #: None with nothing waiting, as /v1/stats' levels say it (0.0 read as "an ad arrived just now")
        "oldestAgeSeconds": _oldest(reading),
        "windowSeconds": None if window is None else round(window, 6),  # what the rates below are divided by
        "submittedPerSec": rates.get("submittedPerSec"),
        "completedPerSec": rates.get("completedPerSec"),
        "perWorkerPerSec": rates.get("perWorkerPerSec"),
        "perWorkerBasis": basis,
        "workers": None if workers is None else sum(1 for w in workers if w.state != "draining"),
    }



def state_document(
    settings: AutoscalerSettings,
    *,
    backend: str,
    leader: str,
    leader_since: float | None,
    now: float,
    entry: dict[str, Any],
    running: int | None,
    draining: Any,
    observed: dict[str, Any] | None,
    decisions: list[dict[str, Any]],
    next_in: float,
) -> dict[str, Any]:
    """The shared ``state`` the leader writes after each tick (read back by :func:`status_document`).
    ``running`` is the replica count after this decision; ``entry`` the decision (it keeps the count it
    started from); ``next_in``: seconds until the leader records again (its interval, or its back-off); epoch
    seconds throughout."""
    return {
        "backend": backend,
        "leader": leader,
        "leaderSince": iso(leader_since),
        "t": now,
        "updatedAt": iso(now),
        "intervalSeconds": settings.interval,
        "nextInSeconds": round(next_in, 3),
        "leaseTtlSeconds": lease_ttl(settings.interval),
        "minReplicas": settings.min_replicas,
        "maxReplicas": settings.max_replicas,
        "current": running,
        "desired": entry["desired"],
        "reason": decisions[0]["reason"] if decisions else entry["reason"],  # a change it named stays named
        "applied": entry["applied"],
        "error": entry["error"],
        "draining": draining,
        "observed": observed,
        "decisions": decisions,
    }


__all__ = ["STALE_INTERVALS", "observed_document", "state_document", "status_document"]
