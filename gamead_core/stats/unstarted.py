"""A level's oldest waiting ad, the ads workers hold unstarted counted: the queue head's age or the oldest held one's.

An ad a worker's long poll took while its slots were busy, or one in its prefetch buffer, is delivered (JetStream
counts it ack pending, not pending) but not started: its record says ``queued``, and it waits as much as one in
the queue. The queue head (:func:`~gamead_core.queue.depth.level_depth`) does not see it, so each worker's heartbeat
says per level since when the oldest it holds so has waited (``unstartedSince``,
:mod:`gamead_core.worker.unstarted`), and :func:`~gamead_core.stats.reading.read_queue` takes the older of the two.
``/v1/stats``' ``oldestAgeSeconds`` and ``overHorizon``, ``gamead top``'s OLDEST, the gauge
``gamead_queue_oldest_age_seconds`` and the autoscaler's oldest age all read that (attack30a F1: a P5 ad held
12.9 s was shown as 7.7 s, not over its 8 s horizon).

How stale: a worker's figure is as of its last heartbeat or held-ads announcement (which goes out whenever it starts
ads, so a started ad stops counting then): an ad it took since is counted from its next beat. A figure is dropped
once its entry is more than :data:`FRESH_BEATS` beats old (a fenced or stopped worker, review30 F1). A worker does
not count an inbox ad delivered more than ``queue.ack_wait`` ago (JetStream redelivered it elsewhere), nor a
redelivery at all (:mod:`gamead_core.worker.unstarted`): an ad waiting for redelivery (handed back, say) is found
in the queue instead (:mod:`gamead_core.stats.waiting_again`). Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from gamead_core.queue.depth import LevelDepth
from gamead_core.registry import NodeInfo


#: A worker's figure counts while its last heartbeat (or held-ads announcement) is at most this many of its
#: ``registry.heartbeat_interval`` old: the next beat is due after one, half a beat more for its delay (sooner
#: than the registry's ``late``, 2.5 beats: a stale figure is not counted while the node still looks alive)
FRESH_BEATS = 1.5


def counts(node: NodeInfo, now: float) -> bool:
    """Whether ``node``'s ``unstartedSince`` is counted at ``now`` (epoch s): a worker, not ``draining``, whose
    ``heartbeatAt`` is within :data:`FRESH_BEATS` × its ``heartbeatInterval`` of ``now`` (review30 F1: a fenced
    worker's last beat, kept until ``registry.ttl``, still said "held since" of ads it had handed back, and the
    age grew; the autoscaler's max-age/urgent rules scaled up on it). An older node (no interval) is not."""
    interval = node.heartbeat_interval
    return (node.role == "worker" and node.state != "draining" and interval is not None
            and now - node.heartbeat_at.timestamp() <= FRESH_BEATS * interval)


def held_since(nodes: Iterable[NodeInfo] | None, now: float) -> dict[int, float]:
    """Level → the earliest ``unstartedSince`` (epoch seconds) over the entries among ``nodes`` (the registry's;
    None when it could not be read: nothing is known, ``{}``) that :func:`counts` at ``now`` (epoch s)."""
    out: dict[int, float] = {}
    for node in nodes or ():
        if not node.unstarted_since or not counts(node, now):
            continue
        for level, at in node.unstarted_since.items():
            t = at.timestamp()
            if level not in out or t < out[level]:
                out[level] = t
    return out


def with_held(depths: Iterable[LevelDepth], since: Mapping[int, float], now: float) -> tuple[LevelDepth, ...]:
    """``depths`` (read at ``now``, epoch seconds) whose ``oldest_age`` counts the ads held unstarted since
    ``since[level]`` (:func:`held_since`): the older of the queue head's age and ``now - since`` (never below 0).
    ``pending`` and the other counts are JetStream's, unchanged."""
    out = []
    for depth in depths:
        at = since.get(depth.level)
        if at is not None:
            held = max(0.0, now - at)
            depth = replace(depth, oldest_age=held if depth.oldest_age is None else max(depth.oldest_age, held))
        out.append(depth)
    return tuple(out)


__all__ = ["FRESH_BEATS", "counts", "held_since", "with_held"]
