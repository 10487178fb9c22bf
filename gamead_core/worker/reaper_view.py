"""What the reaper has seen of the registry, kept across a gap in its reading (:class:`RegistryView`; pure, no I/O).

A death is judged between two good reads of one registry (:func:`gamead_core.worker.reaper_loop.run_reaper`): a node
listed by one and gone from the next (or back as another incarnation). Some reads cannot be compared with the
one before: after a round that failed (nats-server stalled: the listing got no answer), a lease lost meanwhile (a
stall outlasts the reaper lease too), a reconnection (a restarted nats-server's registry, a memory store, starts
empty: every node not yet beating again would look dead, review27 F2), or while this node's own heartbeat is
refused (the registry takes no writes: every entry expires). Before, such a gap dropped the view and the next good
read only started a new one, so a node whose entry expired during the gap was in neither: never named, its held
ads never handed back nor its records settled, a dead API's records without a message never queued (doctor36:
``dead-1`` killed during a 3 s SIGSTOP of nats-server, never named).

Now the last good view is *held over* the gap. A node of it listed again by a good read after the gap is alive (or,
as another incarnation, dead: judged at once). One still absent :attr:`RegistryView.grace` seconds
(``registry.ttl``) after the first good read that followed the gap is judged dead: every live node beats again
within its heartbeat interval, shorter than the TTL, so a live one is never taken for dead. A gap longer than
:attr:`RegistryView.keep` seconds (``queue.duplicate_window``) drops what was held over: by then JetStream has
redelivered a dead worker's ads (``ack_wait``) and a dead API's records can no longer be queued again safely (the
doctor names them), and the held-over entries may be long gone nodes another reaper settled.

An entry that vanished less than ``registry.ttl`` after its last heartbeat, with no gap (the registry bucket purged or
lost without a reconnection this node saw), did not expire: only the bucket's ``max_age`` expires one
(:func:`gamead_core.registry.gone.lost_early`, gone43). Given the time (``wall``), such a node is not judged: it is
kept (:attr:`RegistryView.lost`) and judged if still absent once its entry would have expired (heartbeat + grace),
and at most ``grace`` after it was found absent (:attr:`RegistryView.lost_since`: a heartbeat stamped ahead). A
deleted entry (a clean stop) vanished undeleted neither: the reaper asks the registry about each node found absent
for the first time (:meth:`RegistryView.first_absent`) while its delete mark lives (review44 F1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gamead_core.registry import NodeInfo, same_incarnation
from gamead_core.registry import deaths as node_deaths
from gamead_core.registry.gone import lost_early


@dataclass
class RegistryView:
    """The registry as the reaper last read it well. ``grace``: seconds a held-over node must stay absent after
    a gap before it is judged dead (``registry.ttl``); ``keep``: the longest gap a view is held over
    (``queue.duplicate_window``). Times are monotonic seconds, given by the caller."""

    grace: float
    keep: float
    seen: dict[str, NodeInfo] = field(default_factory=dict)  #: every node of the last good read (workers, APIs)
    held: dict[str, NodeInfo] = field(default_factory=dict)  #: nodes of the view before a gap, not seen since
    good_at: float | None = None  #: when the last good read was made
    gap_from: float | None = None  #: a gap is under way: when its view was last read well (None: no gap)
    back_at: float | None = None  #: when the first good read after the gap was made
    #: nodes whose entries vanished less than ``grace`` after their heartbeat, not seen since: not expired (gone43)
    lost: dict[str, NodeInfo] = field(default_factory=dict)
    #: when each :attr:`lost` node was first found absent: it is held ``grace`` after that at most, whatever its
    #: heartbeat says (a first beat stamped on a host clock 5 min ahead held a killed API's records 5 min)
    lost_since: dict[str, float] = field(default_factory=dict)

    def gap(self, now: float) -> None:
        """This round's read cannot be compared with the last one (module doc): hold the last view over."""
        if self.gap_from is None and self.good_at is not None:
            self.gap_from = self.good_at
        self.held.update({**self.lost, **self.seen})
        self.seen, self.lost, self.lost_since, self.back_at = {}, {}, {}, None
        if self.gap_from is not None and now - self.gap_from > self.keep:
            self.held = {}

    def deaths(self, now_seen: dict[str, NodeInfo], now: float, wall: float | None = None) -> list[NodeInfo]:
        """The nodes judged dead by this good read (``now_seen``: every node it listed, by id): those of the last
        good read (and :attr:`lost`) gone or back as another incarnation, and held-over ones back as another
        incarnation or absent for ``grace`` since the gap ended. With ``wall`` (epoch s, nats-server's clock, as
        heartbeats are), none absent less than ``grace`` after its heartbeat: lost with the bucket, not expired
        (module doc; :meth:`read` keeps it in :attr:`lost`). Changes nothing: :meth:`read` records the read once
        its deaths are settled (a round that fails before leaves them to the next)."""
        def held(n: NodeInfo) -> bool:  # lost with the bucket; never past ``grace`` after it was found absent
            absent = {n.id: now - self.lost_since.get(n.id, now)}
            return wall is not None and n.id not in now_seen and bool(lost_early([n], wall, self.grace, absent)[0])

        out = [n for n in node_deaths({**self.lost, **self.seen}, now_seen, lambda node: True) if not held(n)]
        back_at = now if self.back_at is None else self.back_at
        for node_id, old in self.held.items():
            new = now_seen.get(node_id)
            if (new is not None and not same_incarnation(old, new)) or (new is None and now - back_at >= self.grace):
                out.append(old)
        return out

    def first_absent(self, now_seen: dict[str, NodeInfo], judged: list[NodeInfo]) -> list[NodeInfo]:
        """The nodes of the last good read absent from ``now_seen`` and not in ``judged`` (:meth:`deaths` holds them:
        gone with the bucket, or deleted), this read being the first to find them absent. The caller asks the
        registry whether each was deleted and gives those to :meth:`read` with ``judged`` (settled, not lost; one
        registry read a node, at its first absence, besides the one at its judgement): a clean stop is told by its
        delete mark, which ``max_age`` removes ``registry.ttl`` after the stop, so asked only once the hold ends
        (heartbeat + ``grace``) it is gone about one time in four and, with no clean-stop note, the node was judged
        dead and its running ad charged an attempt (review44 F1). Pure."""
        out = {node.id for node in judged}
        return [node for i, node in self.seen.items() if i not in now_seen and i not in out]

    def read(self, now_seen: dict[str, NodeInfo], judged: list[NodeInfo], now: float) -> None:
        """A good read whose deaths (``judged``, from :meth:`deaths`) were settled: it is the view now; the nodes
        of the last read (or :attr:`lost`) absent and not judged are (still) lost with the bucket."""
        if self.held and self.back_at is None:
            self.back_at = now
        gone = {node.id for node in judged}
        self.held = {i: n for i, n in self.held.items() if i not in now_seen and i not in gone}
        self.lost = {i: n for i, n in {**self.lost, **self.seen}.items() if i not in now_seen and i not in gone}
        self.lost_since = {i: self.lost_since.get(i, now) for i in self.lost}
        self.seen, self.good_at, self.gap_from = dict(now_seen), now, None
        if not self.held:
            self.back_at = None

    def forget(self) -> None:
        """Nothing is known of the registry (this node does not lead, for good: its first view starts anew)."""
        self.seen, self.held, self.lost, self.good_at, self.gap_from, self.back_at = {}, {}, {}, None, None, None
        self.lost_since = {}


def unread_too_long(last: float | None, now: float, ttl: float, beat: float) -> bool:
    """True when a listing that arrived at ``now`` came ``ttl`` − ``beat`` seconds or more after the last recorded
    one was asked for (``last``, None: none; s; ``ttl``: ``registry.ttl``, ``beat``: the heartbeat
    interval): only then can a live node's entry have expired between the two (its last beat landed at most
    ``beat`` before ``last``, and ``max_age`` is ``ttl``), so the two are compared only while this is False,
    whatever failed in between (the reaper, :mod:`gamead_core.worker.reaper_loop`, and the views,
    :mod:`gamead_core.stats.gone_watch`; any one clock). Pure."""
    return last is not None and now - last >= ttl - beat


__all__ = ["RegistryView", "unread_too_long"]
