"""Nodes whose registry entry expired: remembered by the API for a while, shown ``gone`` (pure).

The bucket's ``max_age`` (``registry.ttl``) removes the entry of a node that stopped beating: frozen (SIGSTOP),
hung, or killed. Its process may still be alive and hold ads, so a view that simply stops listing it hides the
one node that needs attention. The API remembers each node it saw whose entry then expired (not deleted: a
clean stop deletes its entry and is not "gone") and lists its last entry as ``gone`` for :func:`keep_seconds`,
or until a node of that id beats again (``gamead up`` restarts a worker under its id).

Only ``max_age`` can have expired an entry, so an entry that vanished (not deleted) before ``registry.ttl`` after
its last heartbeat did not expire: it went with the bucket (a restarted nats-server empties a memory store; a
purge). Such a node (:func:`lost_early`) is listed with its last entry, in the state the views give that entry
(``late`` once its beats are overdue), until its entry would have expired; only then, still absent, is it gone
(gone43: a nats-server restart listed the API answering and two live workers ``gone`` for ~3 s).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from nats.js.api import StreamInfo

from gamead_core.registry.wire import NodeInfo

#: a gone node is listed for at least this many seconds (and at least 2 × ``registry.ttl``)
GONE_KEEP_MIN = 60.0


def keep_seconds(ttl: float) -> float:
    """How long (s) a node whose entry expired stays listed ``gone``: 2 × ``ttl`` (seconds), at least a minute."""
    return max(GONE_KEEP_MIN, 2 * ttl)


@dataclass(frozen=True, slots=True)
class Gone:
    """A node whose entry expired: its last entry, and when (epoch s) the API found the entry gone."""

    node: NodeInfo
    missed_at: float


def vanished(before: Iterable[NodeInfo], after: Iterable[NodeInfo]) -> list[NodeInfo]:
    """The entries of ``before`` whose id is not in ``after`` (two reads of the registry). Pure."""
    live = {n.id for n in after}
    return [n for n in before if n.id not in live]


def lost_early(expired: Iterable[NodeInfo], now: float, ttl: float,
               absent: Mapping[str, float] | None = None) -> tuple[list[NodeInfo], list[NodeInfo]]:
    """``(held, expired)`` of the ``expired`` entries (vanished, not deleted), seen at ``now``
    (epoch s, the sampler's clock: nats-server's, as heartbeats are). ``held``: those ``now`` is less than ``ttl``
    seconds (``registry.ttl``, the bucket's ``max_age``) after their last ``heartbeat_at``: ``max_age`` cannot
    have removed them, the bucket lost them; listed with that entry (a killed node so too: as long as its entry
    would have lived). ``absent``: seconds (any clock) each node, by id, has been found absent so far (none: 0);
    one absent ``ttl`` or more is expired whatever its heartbeat says: a beat stamped ahead of ``now`` (a first
    beat, before its host's first clock sample, on a host whose clock is ahead) would hold it until that stamp +
    ``ttl`` (a killed API's records 5 min: e0fc0799; the views listed it as long: left44). ``expired``: the
    rest, gone. The one rule of the views (:mod:`gamead_core.stats.gone_watch`) and the reaper
    (:class:`~gamead_core.worker.reaper_view.RegistryView`); from the module doc (gone43). Pure."""
    held: list[NodeInfo] = []
    out: list[NodeInfo] = []
    absent = absent or {}
    for node in expired:
        early = now < node.heartbeat_at.timestamp() + ttl and absent.get(node.id, 0.0) < ttl
        (held if early else out).append(node)
    return held, out


def remember_gone(gone: Mapping[str, Gone], after: Iterable[NodeInfo], expired: Iterable[NodeInfo],
                  now: float, keep: float) -> dict[str, Gone]:
    """The gone nodes after a read of the registry: those of ``gone`` not beating again (no id in ``after``) and
    missed at most ``keep`` seconds before ``now`` (epoch s), plus ``expired`` (entries that vanished since the
    previous read and were not deleted), keyed by node id. Pure."""
    live: Collection[str] = {n.id for n in after}
    out = {k: g for k, g in gone.items() if k not in live and now - g.missed_at <= keep}
    for node in expired:
        if node.id not in live and node.id not in out:
            out[node.id] = Gone(node, now)
    return out


def absence_unproven(born: float | None, max_age: float, now: float) -> bool:
    """Whether a node missing from the registry bucket, created at ``born`` (epoch s, nats-server's clock; None:
    unknown) with entries that live ``max_age`` s (0: for ever), may still be live: the bucket is younger than
    ``max_age`` at ``now``, so the entry may have gone with the bucket it was in rather than expired (a live node
    writes it again at its next beat). Pure."""
    return born is not None and max_age > 0 and now - born < max_age


def bucket_young(info: StreamInfo, now: float) -> bool:
    """:func:`absence_unproven` for the registry bucket's stream ``info`` (its creation time and ``max_age``) at
    ``now`` (epoch s, nats-server's clock). Pure."""
    born = info.created.timestamp() if info.created is not None else None
    return absence_unproven(born, float(info.config.max_age or 0), now)


__all__ = ["GONE_KEEP_MIN", "Gone", "absence_unproven", "bucket_young", "keep_seconds", "lost_early", "remember_gone",
           "vanished"]
