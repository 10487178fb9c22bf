"""A level's oldest waiting ad, the ads workers hold unstarted counted: the queue head's age or the oldest held one's.

An ad a worker's long poll took while its slots were busy, or one in its prefetch buffer, is delivered (JetStream
counts it ack pending, not pending) but not started: its record says ``queued``, and it waits as much as one in
the queue. The queue head (:func:`~gamead_core.queue.depth.level_depth`) does not see it, so each worker's heartbeat
says per level since when the oldest it holds so has waited (``unstartedSince``,
:mod:`gamead_core.worker.unstarted`), and :func:`~gamead_core.stats.reading.read_queue` takes the older of the two.
``/v1/stats``' ``oldestAgeSeconds`` and ``overHorizon``, ``gamead top``'s OLDEST, the gauge
``gamead_queue_oldest_age_seconds`` and the autoscaler's oldest age all read that (attack30a F1: a P5 ad held
12.9 s was shown as 7.7 s, not over its 8 s horizon).

How stale: a worker's figure is as of its last heartbeat (``registry.heartbeat_interval``): an ad it took since is
counted from its next beat, one it started since is counted until then. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from gamead_core.queue.depth import LevelDepth
from gamead_core.registry import NodeInfo


def held_since(nodes: Iterable[NodeInfo] | None) -> dict[int, float]:
    """Level → the earliest ``unstartedSince`` (epoch seconds) over the workers among ``nodes`` (the registry's
    entries; None when it could not be read: nothing is known, ``{}``)."""
    out: dict[int, float] = {}
    for node in nodes or ():
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


__all__ = ["held_since", "with_held"]
