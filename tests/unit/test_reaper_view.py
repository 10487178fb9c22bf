"""The reaper's view of the registry held over a gap in its reading (doctor36; ``gamead_core.worker.reaper_view``).
Figures: registry.ttl 2 s (``grace``), duplicate window 120 s (``keep``); before, a gap dropped the view, so a node
whose entry expired during it (``dead``) was never judged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gamead_core.registry import NodeInfo
from gamead_core.worker.reaper_view import RegistryView, unread_too_long

T0 = datetime(2026, 12, 4, tzinfo=UTC)


def _node(node_id: str, pid: int = 1) -> NodeInfo:
    return NodeInfo(id=node_id, role="worker", host="h", pid=pid, version="t", started_at=T0, heartbeat_at=T0,
                    holding=[], ack_wait=30)


def _round(view: RegistryView, nodes: list[NodeInfo], now: float) -> list[str]:
    """One good read: the ids judged dead, then the read recorded."""
    listed = {n.id: n for n in nodes}
    judged = view.deaths(listed, now)
    view.read(listed, judged, now)
    return [n.id for n in judged]


def test_without_a_gap_a_node_gone_is_dead_at_once() -> None:
    view = RegistryView(grace=2.0, keep=120.0)
    assert _round(view, [_node("a"), _node("b")], 0.0) == []
    assert _round(view, [_node("a")], 0.5) == ["b"]
    assert _round(view, [_node("a")], 1.0) == []


def test_a_node_gone_during_a_gap_is_judged_once_grace_after_it() -> None:
    view = RegistryView(grace=2.0, keep=120.0)
    _round(view, [_node("live"), _node("dead")], 0.0)
    view.gap(1.0)  # reads failed, lease lost: no node listed meanwhile
    view.gap(3.0)
    assert _round(view, [], 5.0) == []  # first read after the gap: every entry expired, none judged
    assert _round(view, [_node("live")], 5.5) == []  # live beats again
    assert _round(view, [_node("live")], 6.9) == []
    assert _round(view, [_node("live")], 7.0) == ["dead"]  # grace (2 s) after the first good read
    assert _round(view, [_node("live")], 8.0) == []  # once


def test_a_held_over_node_back_as_another_incarnation_is_dead_at_once() -> None:
    view = RegistryView(grace=2.0, keep=120.0)
    _round(view, [_node("w", pid=1)], 0.0)
    view.gap(1.0)
    assert _round(view, [_node("w", pid=2)], 2.0) == ["w"]
    assert _round(view, [_node("w", pid=2)], 5.0) == []


def test_a_gap_longer_than_keep_drops_the_view() -> None:
    view = RegistryView(grace=2.0, keep=120.0)
    _round(view, [_node("old")], 0.0)
    view.gap(60.0)
    view.gap(121.0)
    assert _round(view, [], 130.0) == [] and _round(view, [], 200.0) == []


def test_a_round_that_fails_after_its_deaths_were_found_leaves_them_to_the_next() -> None:
    view = RegistryView(grace=2.0, keep=120.0)
    _round(view, [_node("a"), _node("b")], 0.0)
    assert [n.id for n in view.deaths({"a": _node("a")}, 0.5)] == ["b"]  # the round fails before view.read
    view.gap(1.0)
    assert _round(view, [_node("a")], 1.5) == []
    assert _round(view, [_node("a")], 3.5) == ["b"]


def test_a_node_lost_with_the_bucket_is_held_over_not_judged_at_once() -> None:
    """gone43: with no gap (no reconnection: the registry bucket purged or lost unseen), an entry that vanished
    less than ``grace`` (``registry.ttl``) after its beat did not expire; the reaper judged its live node dead at
    once ("stopped answering", its ads handed back). Given the time (``wall``, epoch s), it is kept and judged
    only if still absent once its entry would have expired (heartbeat + ``grace``). Without the rule: ``['b']``
    at 0.5."""
    view, beat = RegistryView(grace=2.0, keep=120.0), T0.timestamp()

    def read(nodes: list[NodeInfo], now: float) -> list[str]:
        listed = {n.id: n for n in nodes}
        judged = view.deaths(listed, now, wall=beat + now)
        view.read(listed, judged, now)
        return [n.id for n in judged]

    assert read([_node("a"), _node("b")], 0.0) == []
    assert read([_node("a")], 0.5) == []  # b's entry 0.5 s after its beat: lost, not expired
    assert read([_node("a"), _node("b")], 1.0) == []  # it beats into the new bucket: alive, never judged
    assert read([_node("a")], 1.5) == []  # lost again (its beat was at T0)
    assert read([_node("a")], 1.9) == []
    assert read([_node("a")], 2.0) == ["b"]  # still absent when its entry would have expired: dead
    assert read([_node("a")], 2.5) == []  # once
    assert read([], 5.0) == ["a"]  # a's beat is 5 s old: expired, judged at once as before
    c = _node("c").model_copy(update={"heartbeat_at": T0 + timedelta(seconds=10)})  # lost, then a reconnection:
    assert read([c], 10.0) == [] and read([], 10.5) == []  # what is lost is held over with the rest of the view
    view.gap(10.7)
    assert read([], 11.0) == [] and read([], 12.9) == []  # held: judged grace after the first read after the gap
    assert read([], 13.0) == ["c"]


def test_a_lost_node_whose_beat_reads_ahead_is_held_grace_after_it_was_found_absent_at_most() -> None:
    """Fresh clone of f4bdedc7 (test_clock_skew_worker): an API on a host 5 min ahead, killed before its second beat,
    left an entry stamped 5 min ahead (its first beat comes before its first clock sample); held "lost with the
    bucket" until that stamp + ``grace``, its records waited 5 min for the reaper (the test's 30 s wait failed). A
    lost node is held ``grace`` after it was first found absent at most: before, ``[]`` at 2.0 (judged at 300 s)."""
    view, beat = RegistryView(grace=2.0, keep=120.0), T0.timestamp()
    ahead = _node("x").model_copy(update={"heartbeat_at": T0 + timedelta(seconds=300)})

    def read(nodes: list[NodeInfo], now: float) -> list[str]:
        listed = {n.id: n for n in nodes}
        judged = view.deaths(listed, now, wall=beat + now)
        view.read(listed, judged, now)
        return [n.id for n in judged]

    assert read([ahead], 0.0) == []
    assert read([], 0.5) == [] and read([], 2.4) == []  # held: found absent at 0.5
    assert read([], 2.5) == ["x"]  # grace after it was found absent: judged, not 300 s on


def test_reads_too_far_apart_are_a_gap_whatever_failed_between() -> None:
    """attack44b F4: a failure after the reaper's listing (a sweep) is no longer a gap; what that rule also covered, a
    stall that ended between two rounds, is told by the time between the listings instead: a live node's entry can
    have expired unseen only when they are ``registry.ttl`` − heartbeat or more apart (ttl 10 s, heartbeat 2 s: 8 s)."""
    assert not unread_too_long(None, 100.0, 10.0, 2.0)  # no read yet: nothing to compare
    assert not unread_too_long(0.0, 7.9, 10.0, 2.0)
    assert unread_too_long(0.0, 8.0, 10.0, 2.0)
