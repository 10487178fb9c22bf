"""The bounds of a manual scaling override (``POST /v1/scale/override``, ``gamead scale set``), in one place for
the API that enforces them and the CLI that refuses past them before sending. No imports: the CLI reads them at
start-up without loading NATS."""

from __future__ import annotations

#: Longest manual override, seconds (a forgotten override must not pin the pool for ever).
MAX_OVERRIDE_SECONDS = 7 * 86400.0
#: Largest worker count an override may hold.
MAX_OVERRIDE_REPLICAS = 10_000

#: The ``type`` of the 422 detail refusing an override shorter than the autoscaler's decision interval (its
#: ``min``: the interval, seconds); ``gamead scale set`` reads it as a bad ``--for`` (exit 2).
TOO_SHORT = "too_short"


def too_short_reason(interval: float) -> str:
    """Why an override shorter than the decision interval (``interval``, seconds, the leader's ``intervalSeconds``)
    is refused, as the API and ``gamead scale set`` say it. Pure."""
    return (f"shorter than the autoscaler's decision interval ({interval:g} s): it could end before any decision "
            "applies it")


#: The largest ``spec.replicas`` the Kubernetes API holds: an int32 (apps/v1 ScaleSpec).
MAX_SCALE_REPLICAS = 2**31 - 1


def replica_count(value: object) -> int:
    """A Scale's ``spec.replicas`` as a count: 0 for None (the API server leaves a Deployment at 0 out: ``spec: {}``),
    else an int in 0 … :data:`MAX_SCALE_REPLICAS`. Raises ValueError for anything else (a negative or a bool: no
    API server sends one; a proxy's or a buggy double's answer, attack39b F4: ``-5`` was decided from, "scale 0→2"
    from ``FROM -5``). Pure."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SCALE_REPLICAS:
        raise ValueError(f"spec.replicas {str(value)[:40]} is not a replica count (0 to {MAX_SCALE_REPLICAS})")
    return value


__all__ = ["MAX_OVERRIDE_REPLICAS", "MAX_OVERRIDE_SECONDS", "MAX_SCALE_REPLICAS", "TOO_SHORT", "replica_count",
           "too_short_reason"]
