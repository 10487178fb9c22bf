"""Which nodes the views list ``gone``, and which vanished ones they still list (:class:`GoneWatch`).

The sampler's part of :mod:`gamead_core.registry.gone`, kept across its reads: an entry that vanished from one read
of the registry to the next (not deleted, not beating again) is held with its last entry while the bucket could
have lost it (:func:`~gamead_core.registry.gone.lost_early`), then remembered ``gone``. It is held ``registry.ttl``
after the sampler first found it absent at most, whatever its heartbeat says: the reaper's rule
(:class:`~gamead_core.worker.reaper_view.RegistryView`, e0fc0799), so the views say ``gone`` of a node when the
reaper judges it (left44: a killed node whose last beat was stamped 300 s ahead was listed until that stamp + ttl).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gamead_core.registry import NodeInfo, Registry
from gamead_core.registry.gone import Gone, found_again, keep_seconds, lost_early, remember_gone, vanished


@dataclass
class GoneWatch:
    """What the sampler knows of vanished nodes: :attr:`gone` (listed ``gone``), :attr:`lost_since` (held ones)."""

    #: nodes whose entry expired (silent past registry.ttl) by id, listed ``gone`` for a while
    gone: dict[str, Gone] = field(default_factory=dict)
    #: when (epoch s, the sampler's clock) each held node (vanished, not yet expired) was first found absent
    lost_since: dict[str, float] = field(default_factory=dict)

    async def note(self, registry: Registry | None, before: tuple[NodeInfo, ...], nodes: tuple[NodeInfo, ...],
                   now: float, ttl: float) -> tuple[NodeInfo, ...]:
        """The nodes to list after a read of the registry that gave ``nodes`` at ``now`` (epoch s, the sampler's
        clock; ``before``: the last read's list, ``ttl``: ``registry.ttl`` s): ``nodes`` with those of ``before``
        that vanished but beat again meanwhile or were lost with the bucket (held: last entry), sorted by role then
        id; those that expired go into :attr:`gone`. One lookup per vanished node (``registry``; none: no lookup,
        nothing judged). Raises nothing: a failed lookup counts as expired (:func:`found_again`)."""
        lost = vanished(before, nodes)
        expired: list[NodeInfo] = []
        held: list[NodeInfo] = []
        if lost and registry is not None:
            looked = await asyncio.gather(*(registry.lookup(n.id) for n in lost), return_exceptions=True)
            expired, back = found_again(lost, looked)
            absent = {n.id: now - self.lost_since.get(n.id, now) for n in expired}
            held, expired = lost_early(expired, now, ttl, absent)  # not expired: gone with the bucket (gone43)
            nodes = tuple(sorted((*nodes, *back, *held), key=lambda n: (n.role, n.id)))
        self.lost_since = {n.id: self.lost_since.get(n.id, now) for n in held}
        self.gone = remember_gone(self.gone, nodes, expired, now, keep_seconds(ttl))
        return nodes


__all__ = ["GoneWatch"]
