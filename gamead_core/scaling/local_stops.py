"""Which of ``gamead up``'s workers a scale-down stops, pure: unhealthy ones first, then as a Kubernetes scale-down
removes them (:func:`~gamead_core.scaling.removal.removal_rank`: the quiet ones, then those running and holding the
fewest ads), the newest among equals.

Before, a local scale-down stopped unhealthy workers first, then the newest, quiet or not, busy or not: with
local-1 quiet (``gamead workers quiet``: it takes no new ad, and the policy counts it as no capacity) and local-2
and local-3 running ads, 3→2 stopped local-3, whose ads' drain cost their time, and local-1 stayed.

A worker's registry entry (the autoscaler's reading) counts for it only if it names its process (id and pid): the
entry of a dead predecessor with its id (left for up to ``registry.ttl``) says nothing of the process running now.
A worker without one (not registered yet, or its entry expired) ranks as an idle one; with the entries unread
(``None``) every healthy worker ranks alike, and the newest go, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gamead_core.registry.wire import NodeInfo
from gamead_core.scaling.removal import NOT_CANDIDATES, removal_rank, removal_why

#: :func:`removal_rank` of a worker without a registry entry: an idle one's
_NO_ENTRY_RANK = (True, 0, 0)


@dataclass(frozen=True, slots=True)
class Running:
    """One of ``gamead up``'s workers: its child name (``worker-3``), worker id (``local-3``), its process's pid
    (None: none now) and whether it is healthy (alive and, by the liveness probe, serving)."""

    name: str
    worker: str
    pid: int | None
    healthy: bool


@dataclass(frozen=True, slots=True)
class Stop:
    """One worker a scale-down stops: its child name, worker id, and why it goes first (``unhealthy``, ``quiet``,
    ``idle``, ``running N`` as :func:`removal_why` says it; ``not registered``; ``newest``: the entries were not
    read)."""

    name: str
    worker: str
    why: str


def to_stop(workers: Sequence[Running], count: int, entries: Iterable[NodeInfo] | None) -> list[Stop]:
    """The ``count`` of ``workers`` (oldest first) a scale-down stops, in order (module doc): unhealthy ones first,
    then by :func:`removal_rank` of their entries among ``entries`` (the registry's; None: unread), the newest among
    equals. Pure."""
    read = entries is not None
    by_id = {e.id: e for e in entries or () if e.role == "worker" and e.state not in NOT_CANDIDATES}
    own = [e if (e := by_id.get(w.worker)) is not None and w.pid is not None and e.pid == w.pid else None
           for w in workers]
    order = sorted(range(len(workers)), key=lambda i: (
        workers[i].healthy, removal_rank(e) if (e := own[i]) is not None else _NO_ENTRY_RANK, -i))
    out = []
    for i in order[:max(0, count)]:
        w, entry = workers[i], own[i]
        why = ("unhealthy" if not w.healthy else removal_why(entry) if entry is not None
               else "not registered" if read else "newest")
        out.append(Stop(w.name, w.worker, why))
    return out


def stops_note(stops: Sequence[Stop]) -> str:
    """What the decision's reason adds for a scale-down that stopped ``stops``: `` (stops local-1 (quiet), local-3
    (idle))`` (at most 5 named). Pure."""
    if not stops:
        return ""
    named = ", ".join(f"{s.worker} ({s.why})" for s in stops[:5])
    named += f" and {len(stops) - 5} more" if len(stops) > 5 else ""
    return f" (stops {named})"


__all__ = ["Running", "Stop", "stops_note", "to_stop"]
