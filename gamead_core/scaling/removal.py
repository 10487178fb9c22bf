"""Which worker pods a Kubernetes scale-down should remove, pure: quiet ones first, then the idlest.

Scaling a Deployment down, Kubernetes (its ReplicaSet controller) picks the pods to delete, not the autoscaler: among
ready pods, those with the lowest ``controller.kubernetes.io/pod-deletion-cost`` annotation first (Kubernetes docs,
"Pod deletion cost"; unset is 0), then the most recently ready. So a busy worker could go while a quiet one (``gamead
workers quiet``: it takes no new ad, and the policy counts it as no capacity) stayed. Before patching ``replicas``
down by ``k``, the autoscaler marks ``k`` workers' pods (:func:`to_remove`: quiet first, then by the ads they run and
hold, fewest first) with a cost lower than any it set before (:func:`mark_cost`), so the ReplicaSet deletes them.

A worker names its pod in its registry entry (``pod``: env ``POD_NAME``, the downward API's ``metadata.name``,
``manifests/base/worker.yaml``); a worker without one (``gamead up``, an older worker) is never marked. Each mark
is lower than every earlier one (seconds since :data:`COST_EPOCH`, negated, times 2; a quiet worker's one less): a
mark left by a scale-down that did not happen (a refused call, a leader that died between its two calls) never makes
the ReplicaSet delete the pod it named before the pods marked now. The annotation's range is int32: these are
ordered until 2060 (then all the lowest int32).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from gamead_core.registry.nodes import pod_name
from gamead_core.registry.wire import NodeInfo

#: The pod annotation the ReplicaSet controller deletes the lowest of first (Kubernetes >= 1.22, beta, on by default)
DELETION_COST: Final = "controller.kubernetes.io/pod-deletion-cost"
#: 2026-01-01T00:00:00Z, epoch seconds: marks count down from it
COST_EPOCH: Final = 1_767_225_600
#: Most pods one scale-down marks (the quiet ones come first): each is one PATCH, all within one call's time
MAX_MARKS: Final = 20
#: The entry states of a worker that is no candidate: stopping already (its pod is terminating: the ReplicaSet no
#: longer counts it), or gone (its entry expired)
NOT_CANDIDATES: Final = ("draining", "gone")


@dataclass(frozen=True, slots=True)
class Mark:
    """One pod to mark: its name, the worker in it, why it goes first (``quiet`` or ``idle``, or ``running N``)."""

    pod: str
    worker: str
    why: str
    cost: int


def mark_cost(now: float, quiet: bool) -> int:
    """The deletion cost of a pod marked at ``now`` (epoch seconds): lower than every mark made before (module
    doc); a quiet worker's lower than an idle one's of the same second. Pure."""
    return max(-(2**31), -2 * max(0, int(now) - COST_EPOCH) - (1 if quiet else 0))


def removal_rank(worker: NodeInfo) -> tuple[bool, int, int]:
    """Where ``worker`` stands in a scale-down's order, the lowest going first: the quiet ones, then by the ads it
    runs, then holds, fewest first. The one rule of both backends: a Kubernetes scale-down's marks
    (:func:`to_remove`) and the workers ``gamead up`` stops (:func:`gamead_core.scaling.local_stops.to_stop`). Pure."""
    return (not worker.quiet, worker.in_flight, len(worker.holding))


def removal_why(worker: NodeInfo) -> str:
    """Why ``worker`` goes first, in :func:`removal_rank`'s words: ``quiet``, ``idle`` or ``running N``. Pure."""
    if worker.quiet:
        return "quiet"
    return "idle" if worker.in_flight == 0 and not worker.holding else f"running {worker.in_flight}"


def to_remove(workers: Iterable[NodeInfo], count: int, now: float) -> list[Mark]:
    """The pods of ``count`` workers to remove first (at most :data:`MAX_MARKS`), in order: the quiet ones, then by
    the ads they run, then hold, fewest first (then by id: one order). Only workers that name their pod and are not
    :data:`NOT_CANDIDATES`; one mark per pod. Pure."""
    seen: set[str] = set()
    candidates: list[tuple[NodeInfo, str]] = []
    for worker in workers:
        pod = pod_name(worker.pod)
        if pod is None or pod in seen or worker.role != "worker" or worker.state in NOT_CANDIDATES:
            continue
        seen.add(pod)
        candidates.append((worker, pod))
    candidates.sort(key=lambda c: (*removal_rank(c[0]), c[0].id))
    chosen = candidates[:max(0, min(count, MAX_MARKS))]
    return [Mark(pod, w.id, removal_why(w), mark_cost(now, w.quiet)) for w, pod in chosen]


def removal_note(marked: list[Mark], count: int, failed: str = "") -> str:
    """What the decision's reason adds for a scale-down by ``count`` (0: none): the pods ``marked`` to go first, or
    why none were. ``failed``: why marking stopped (a refused or failed PATCH), "" when it did not. Pure."""
    if not count:
        return ""
    named = ", ".join(f"{m.pod} ({m.worker}, {m.why})" for m in marked[:5])
    named += f" and {len(marked) - 5} more" if len(marked) > 5 else ""
    if failed:
        done = f"marked {named} to go first, then " if marked else ""
        return f" ({done}could not mark the pods to remove first: {failed}; Kubernetes picks which go)"
    if not marked:
        return " (no worker names its pod (env POD_NAME): Kubernetes picks which pods go)"
    rest = f"; Kubernetes picks the other {count - len(marked)}" if count > len(marked) else ""
    return f" (removes first: {named}{rest})"


__all__ = ["COST_EPOCH", "DELETION_COST", "MAX_MARKS", "Mark", "NOT_CANDIDATES", "mark_cost", "removal_note",
           "removal_rank", "removal_why", "to_remove"]
