"""What one autoscaler tick decides on, pure (no I/O): whether the sampler's latest sample can be used
(:func:`usable_reading`), the policy's :class:`~gamead_core.scaling.policy.Observation` built from it
(:func:`observation_of`), and the line a tick adds to the decisions (:func:`decision_entry`)."""

from __future__ import annotations

from typing import Any

from gamead_core.errors import GameadError
from gamead_core.scaling.policy import Observation
from gamead_core.scaling.store import iso
from gamead_core.stats.reading import QueueReading
from gamead_core.stats.sampler import Sample


def usable_reading(sample: Sample | None) -> QueueReading:
    """The sample's reading; raises :class:`GameadError` when there is none, NATS is not connected, or no
    priority level could be read, not even in part (nothing to decide on)."""
    if sample is None or not sample.reading.connected:
        raise GameadError("NATS is not connected")
    reading = sample.reading
    if not reading.levels and not reading.partial:
        why = reading.unreadable[0][1] if reading.unreadable else "no level read yet"
        raise GameadError(f"no priority level can be read ({why})")
    return reading


def observation_of(reading: QueueReading, rates: dict[str, Any], current: int, *, at: float,
                   now: float, basis: dict[str, Any] | None = None, window: float | None = None) -> Observation:
    """The policy's input: ``reading`` (levels and ack pending, counting the readable partitions of a level
    unreadable as a whole), the sampler's ``rates`` (ads per second: ``submittedPerSec``, ``completedPerSec``,
    ``perWorkerPerSec``), the ``current`` replicas; ``at`` on the policy's monotonic clock, ``now`` in epoch
    seconds (the reading's age is ``now - reading.t``); ``basis`` how the per-worker rate was derived
    (``QueueSampler.per_worker_basis``: its ``bound`` goes in the reason); ``window`` the seconds the rates are over
    (``QueueSampler.rate_window``: the reason says it beside the arrival rate)."""
    levels = reading.levels + reading.partial  # a partly read level counts what was read (a lower bound)
    return Observation(
        at=at,
        levels=levels,
        unreadable_levels=tuple(lvl for lvl, _ in reading.unreadable),
        ack_pending=sum(d.ack_pending for d in levels),
        arrival_rate=rates.get("submittedPerSec") or 0.0,
        completion_rate=rates.get("completedPerSec") or 0.0,
        per_worker_rate=rates.get("perWorkerPerSec"),
        current_replicas=current,
        metrics_age_s=max(0.0, now - reading.t),
        per_worker_bound=(basis or {}).get("bound"),
        quiet_workers=sum(1 for w in reading.workers or () if w.quiet and w.state != "draining"),
        per_worker_basis=basis,
        rate_window_s=window,
    )


def decision_entry(wall: float, current: int | None, desired: int | None, reason: str, applied: bool | None,
                   error: str | None, override: bool, leader: str, changed: str | None = None) -> dict[str, Any]:
    """One line of the decisions (``at`` is ``wall``, epoch seconds, as ISO 8601 UTC; ``applied`` None: unknown,
    a call with no answer whose count could not be read back). ``changed``: how the replica count changed since
    the last tick, when the reason begins by naming it (``replicas changed outside the autoscaler (1→3)``); the
    key is there only then, and the line keeps it while later ticks fold into it (:func:`record_decision`)."""
    entry = {"at": iso(wall), "current": current, "desired": desired, "reason": reason, "applied": applied,
             "error": error, "override": override, "leader": leader}
    if changed:
        entry["changed"] = changed
    return entry
