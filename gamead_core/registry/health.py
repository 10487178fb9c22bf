"""Health rules, pure: percentiles of a worker's recent samples, stuck, and the state to show."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from gamead_core.registry.wire import NodeInfo, Percentiles, State


def percentiles(values: Iterable[float]) -> Percentiles:
    """Nearest-rank p50/p95/p99 of ``values``."""
    data = sorted(values)
    if not data:
        return Percentiles()

    def rank(q: float) -> float:
        return round(data[max(0, math.ceil(q * len(data)) - 1)], 3)

    return Percentiles(p50=rank(0.50), p95=rank(0.95), p99=rank(0.99), count=len(data))


def is_stuck(info: NodeInfo, now: datetime, task_timeout: float) -> bool:
    """A worker is stuck when it holds ads (running, buffered or being written) yet finished nothing for longer
    than ``task_timeout``."""
    if info.role != "worker" or (info.in_flight <= 0 and not info.holding):
        return False
    since = info.last_progress_at or info.started_at
    return (now - since).total_seconds() > task_timeout


#: a heartbeat older than this many ``registry.heartbeat_interval``\ s is ``late`` (two beats missed, and some)
LATE_BEATS = 2.5


def node_state(info: NodeInfo, now: datetime, task_timeout: float, ttl: float | None = None,
               heartbeat_interval: float | None = None, read_age: float = 0.0) -> State:
    """The state to show: the node's own ``draining``, else ``stuck`` / ``late`` / ``quiet`` (a worker told to take
    no new ad, its ``quiet``: :mod:`gamead_core.worker.quiet`) / ``idle`` / ``ok`` as seen at ``now``
    (``task_timeout``, ``ttl``, ``heartbeat_interval``, ``read_age``: seconds).

    With ``ttl`` (``registry.ttl``): a heartbeat older than it is ``stuck`` whatever the node last said (the
    registry could not be read again, e.g. NATS away: its last ``idle``/``ok`` is not known to hold any more;
    ``gamead up`` treats such a silence as a hung worker too). One older than :data:`LATE_BEATS` beats of the
    node's own interval (``info.heartbeat_interval``; of ``heartbeat_interval`` for an older node that does not
    say it; neither: never late) plus ``read_age`` (how much older than ``now`` the registry read is, at most
    the sampler's interval) is ``late`` (frozen, hung, or its beats delayed: what it last said may not hold).
    Every view (``gamead workers``, ``top --once``, the live ``top``) shows the API's state, computed here. A node
    whose entry expired is ``gone`` (:mod:`gamead_core.registry.gone`), not computed here. Pure."""
    age = (now - info.heartbeat_at).total_seconds()
    if ttl is not None and age > ttl:
        return "stuck"
    if info.state != "draining" and is_stuck(info, now, info.task_timeout or task_timeout):
        return "stuck"
    beat = info.heartbeat_interval or heartbeat_interval
    if beat is not None and age > LATE_BEATS * beat + read_age:
        return "late"
    if info.state == "draining":
        return "draining"
    if info.quiet:
        return "quiet"
    if info.role == "worker" and info.in_flight <= 0:
        return "idle"
    return "ok"


__all__ = ["LATE_BEATS", "is_stuck", "node_state", "percentiles"]
