"""Which nodes the views list ``gone``, and which vanished ones they still list (:class:`GoneWatch`).

The sampler's part of :mod:`gamead_core.registry.gone`, kept across its reads, by the reaper's own rule: the views
(``/v1/workers``, ``gamead top``, ``gamead_workers{state}``) say ``gone`` of a node when, reading the same listings,
the reaper would judge it dead (:class:`~gamead_core.worker.reaper_view.RegistryView`, which this holds):

* an entry that vanished from one read to the next is held with its last entry while the bucket could have lost it
  (:func:`~gamead_core.registry.gone.lost_early`, at most ``registry.ttl`` after it was first found absent: left44);
* a read that cannot be compared with the last one (a sample that could not read the registry, a reconnection) is a
  gap (a stall of nats-server is one: the sampler reads every ``stats`` interval, each read bounded, so one fails
  while it lasts; the reaper, whose failures after its listing are no gap, also counts reads too far apart:
  :func:`~gamead_core.worker.reaper_view.unread_too_long`): the nodes of the last view not listed again are held,
  listed with their last entry, and ``gone`` only if still absent ``registry.ttl`` after the reads are back
  (attack44b F1: after a NATS freeze past ``registry.ttl`` every node, the API answering and 4 live workers, was
  listed ``gone`` for a read, ``gamead_workers{state="gone"}`` 4, while the reaper, holding its view over the
  reconnection, judged none);
* a vanished node is asked about once, when first found absent, and when judged: one whose entry is back (a late
  beat) is listed live, one that stopped cleanly (:meth:`Registry.stopped`: its delete mark, or its clean-stop note,
  what the reaper asks) is listed no more, never ``gone`` (attack44b F3: a stop whose mark was lost, noted, was
  listed ``gone`` 24 s while the reaper rightly never judged it); a failed question leaves it held, asked again.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

from gamead_core.registry import NodeInfo, Registry
from gamead_core.registry.gone import Gone, keep_seconds, remember_gone
from gamead_core.worker.reaper_view import RegistryView

#: what asking the registry about a vanished node found: its entry (back), "stopped" (cleanly), "expired", or None
Fate = NodeInfo | str | None


async def fate(registry: Registry, node: NodeInfo) -> Fate:
    """What became of ``node``, absent from a listing: its entry if it is back (a beat landed since), ``"stopped"``
    if its process stopped cleanly (:meth:`Registry.stopped`), else ``"expired"``; None if the registry did not
    answer. Never raises."""
    try:
        entry, _ = await registry.lookup(node.id)
        if entry is not None:
            return entry
        return "stopped" if await registry.stopped(node) else "expired"
    except Exception:  # noqa: BLE001 - not known: held, asked again at the next read
        return None


@dataclass
class GoneWatch:
    """What the sampler knows of vanished nodes: :attr:`gone` (listed ``gone``) and :attr:`view` (the reaper's)."""

    #: nodes whose entry expired (silent past registry.ttl) by id, listed ``gone`` for a while
    gone: dict[str, Gone] = field(default_factory=dict)
    view: RegistryView | None = None  #: the registry as last read well (None before the first read)
    reconnects: int | None = None  #: the NATS connection's reconnect count at that read
    missed_read: bool = False  #: a read failed since: the next one is after a gap

    def missed(self) -> None:
        """A sample could not read the registry (NATS away, the listing failed): the next read is after a gap."""
        self.missed_read = True

    async def note(self, registry: Registry | None, nodes: tuple[NodeInfo, ...], now: float, ttl: float, *,
                   reconnects: int = 0) -> tuple[NodeInfo, ...]:
        """The nodes to list after a read of the registry that gave ``nodes`` at ``now`` (epoch s, the sampler's
        clock, nats-server's as heartbeats are; ``ttl``: ``registry.ttl`` s; ``reconnects``: the connection's
        reconnect count): ``nodes`` with the vanished ones still held (their last
        entry) and those found back, sorted by role then id; the judged ones go into :attr:`gone` (the module doc).
        Without ``registry`` nothing vanished is asked about nor judged. Raises nothing."""
        view = self.view = self.view or RegistryView(grace=ttl, keep=math.inf)  # held until judged, however long
        reconnected = self.reconnects is not None and reconnects != self.reconnects
        if self.missed_read or reconnected:
            view.gap(now)
        seen = {n.id: n for n in nodes}
        judged = [n for n in view.deaths(seen, now, wall=now) if n.id not in seen]  # another incarnation: listed
        ask = [*judged, *view.first_absent(seen, judged)]
        fates = await asyncio.gather(*(fate(registry, n) for n in ask)) if registry is not None else [None] * len(ask)
        back = {f.id: f for f in fates if isinstance(f, NodeInfo)}
        dead = {n.id for n in judged}  # settled when known; the rest (first found absent) held unless stopped
        settled = [n for n, f in zip(ask, fates) if n.id not in back and (f == "stopped" or (f and n.id in dead))]
        expired = [n for n, f in zip(ask, fates) if f == "expired" and n.id in dead]
        view.read({**seen, **back}, settled, now)  # back: in the view, as listed (a later absence is judged)
        self.reconnects, self.missed_read = reconnects, False
        held = {i: n for i, n in {**view.held, **view.lost}.items() if i not in seen and i not in back}
        listed = tuple(sorted((*nodes, *back.values(), *held.values()), key=lambda n: (n.role, n.id)))
        self.gone = remember_gone(self.gone, listed, expired, now, keep_seconds(ttl))
        return listed


__all__ = ["Fate", "GoneWatch", "fate"]
