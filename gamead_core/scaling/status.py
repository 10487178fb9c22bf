"""The ``GET /v1/scale`` document, from the shared state, the lease and the override (pure, no I/O)."""

from __future__ import annotations

from typing import Any

from gamead_core.scaling.lease import Lease, lease_ttl
from gamead_core.scaling.settings import AutoscalerSettings
from gamead_core.scaling.store import Override, active_override, iso

#: ``state`` older than this many intervals is shown as stale (its leader is gone or stuck).
STALE_INTERVALS = 3.0


def status_document(
    state: dict[str, Any] | None,
    lease: Lease | None,
    override: Override | None,
    *,
    now: float,
    settings: AutoscalerSettings,
    node_id: str | None = None,
) -> dict[str, Any]:
    """The ``GET /v1/scale`` answer from the shared state, the lease and the override (all may be None)."""
    st = state or {}
    leader = None
    if lease is not None and not lease.expired(now):
        leader = {"id": lease.holder, "since": iso(lease.acquired_at), "expiresAt": iso(lease.expires_at),
                  "expiresInSeconds": round(max(0.0, lease.expires_at - now), 2)}
    updated = st.get("t")
    interval = float(st.get("intervalSeconds") or settings.interval)
    age = round(max(0.0, now - float(updated)), 2) if updated is not None else None
    ov = active_override(override, now)
    return {
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
        "stale": age is None or age > STALE_INTERVALS * interval,
        "observed": st.get("observed"),
        "override": ov.wire(now) if ov is not None else None,
        "decisions": list(st.get("decisions") or []),
        "node": node_id,
    }


__all__ = ["STALE_INTERVALS", "status_document"]
