"""Pure: which registry entries forbid a repartition (attack42b F1), and the one line that names them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gamead_core.queue.repartition_guard import NAMED, blocking_nodes, reference_now, refusal
from gamead_core.registry import NodeInfo

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc)


def node(node_id: str, partitions: int | None, *, age: float = 1.0, role: str = "worker", host: str = "h1",
         pid: int = 100) -> NodeInfo:
    beat = NOW - timedelta(seconds=age)
    return NodeInfo.model_validate({"id": node_id, "role": role, "host": host, "pid": pid, "version": "0",
                                    "startedAt": beat - timedelta(minutes=5), "heartbeatAt": beat,
                                    "partitions": partitions})


def test_live_nodes_on_another_or_an_unknown_setting_block_the_rest_do_not() -> None:
    nodes = [node("old-api", 3, role="api", age=0.5), node("old-w", 3, age=4.0), node("older-gamead", None),
             node("new-w", 4), node("expired", 3, age=10.0), node("me", 3, host="here", pid=7)]
    got = blocking_nodes(nodes, 4, now=NOW, ttl=10.0, own=("here", 7))
    assert [n.id for n in got] == ["old-w", "older-gamead", "old-api"]  # oldest beat first


def test_the_refusal_names_each_node_and_counts_the_ones_past_the_named() -> None:
    blockers = [node(f"w{i}", 3, age=2.0) for i in range(NAMED + 2)] + [node("legacy", None, role="api")]
    line = refusal(blockers, 4, now=NOW, ttl=10.0)
    assert "\n" not in line and line.startswith("queue.repartition to queue.partitions 4 refused, nothing changed: ")
    assert f"{NAMED + 3} live node(s)" in line and "w0 (worker on h1, partitions 3, heartbeat 2.0s ago)" in line
    assert "and 3 more" in line and "legacy" not in line
    assert "registry.ttl = 10s" in line and "README: Partitions" in line
    assert "partitions unknown" in refusal([blockers[-1]], 4, now=NOW, ttl=10.0)


def test_entries_are_aged_against_the_newest_beat_when_this_clock_reads_later() -> None:
    """review43 F1: a start's clock 60 s ahead (no sample yet: the host's) read a live node's 0.5 s old beat as 60 s
    old and let the repartition through; aged against the newest beat listed, it blocks. A clock behind is kept."""
    nodes = [node("old-api", 3, role="api", age=0.5), node("new-w", 4, age=1.0)]
    ahead = NOW + timedelta(seconds=60)
    assert blocking_nodes(nodes, 4, now=ahead, ttl=10.0, own=("x", 1)) == []  # what the guard did
    now = reference_now(nodes, ahead)
    assert now == NOW - timedelta(seconds=0.5)
    assert [n.id for n in blocking_nodes(nodes, 4, now=now, ttl=10.0, own=("x", 1))] == ["old-api"]
    assert reference_now(nodes, NOW - timedelta(seconds=5)) == NOW - timedelta(seconds=5)
    assert reference_now([], ahead) == ahead
