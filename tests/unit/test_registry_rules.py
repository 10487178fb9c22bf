"""The pure decisions behind the registry and ``/v1/stats``: stuck, node state, percentile merging,
restart-proof totals and rates, the aging horizon (moved out of ``tests/integration/test_registry_stats.py``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from gamead_core.registry import NodeInfo, Percentiles, is_stuck, node_state, percentiles
from gamead_core.stats import MonotonicTotal, aging_horizon, merge_percentiles, step_rates, window_rate

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def node(**kw: Any) -> NodeInfo:
    base: dict[str, Any] = dict(id="w", role="worker", host="h", pid=1, version="0", started_at=T0,
                                heartbeat_at=T0, concurrency=4)
    return NodeInfo(**{**base, **kw})


def test_stuck_means_in_flight_without_progress_past_the_task_timeout() -> None:
    busy = node(in_flight=2, last_progress_at=T0)
    assert not is_stuck(busy, T0 + timedelta(seconds=60), task_timeout=60)
    assert is_stuck(busy, T0 + timedelta(seconds=61), task_timeout=60)
    assert not is_stuck(node(in_flight=0, last_progress_at=T0), T0 + timedelta(hours=1), 60)  # idle, not stuck
    assert is_stuck(node(in_flight=1), T0 + timedelta(seconds=61), 60)  # never progressed: since start
    assert not is_stuck(node(role="api", in_flight=5), T0 + timedelta(hours=1), 60)


def test_node_state_prefers_draining_then_stuck_then_idle() -> None:
    late = T0 + timedelta(seconds=120)
    assert node_state(node(in_flight=1, last_progress_at=T0, state="draining"), late, 60) == "draining"
    assert node_state(node(in_flight=1, last_progress_at=T0), late, 60) == "stuck"
    assert node_state(node(in_flight=1, last_progress_at=T0, task_timeout=300), late, 60) == "ok"  # its own
    assert node_state(node(in_flight=0), late, 60) == "idle"
    assert node_state(node(role="api"), late, 60) == "ok"


def test_a_heartbeat_past_two_and_a_half_beats_is_late_before_it_is_stuck() -> None:
    """attack25d #4: a frozen worker kept its last ``idle``/``ok`` for the whole ttl."""
    quiet = node(in_flight=0)
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    assert node_state(quiet, at(4.9), 60, ttl=10, heartbeat_interval=2) == "idle"
    assert node_state(quiet, at(5.1), 60, ttl=10, heartbeat_interval=2) == "late"
    assert node_state(node(state="draining"), at(5.1), 60, ttl=10, heartbeat_interval=2) == "late"
    assert node_state(quiet, at(10.1), 60, ttl=10, heartbeat_interval=2) == "stuck"
    assert node_state(node(in_flight=1, last_progress_at=T0), at(61), 60, ttl=100, heartbeat_interval=2) == "stuck"


def test_an_expired_node_is_gone_for_a_while_and_until_its_id_beats_again() -> None:
    from gamead_core.registry.gone import keep_seconds, remember_gone, vanished

    a, b = node(id="a"), node(id="b")
    assert vanished([a, b], [b]) == [a]
    assert keep_seconds(10) == 60 and keep_seconds(45) == 90
    gone = remember_gone({}, [b], [a], now=100.0, keep=60)
    assert list(gone) == ["a"] and gone["a"].missed_at == 100.0
    assert list(remember_gone(gone, [b], [], now=160.0, keep=60)) == ["a"]  # still within the minute
    assert remember_gone(gone, [b], [], now=160.5, keep=60) == {}  # forgotten after it
    assert remember_gone(gone, [a, b], [], now=101.0, keep=60) == {}  # "a" beats again (a restart under its id)


def test_percentiles_are_nearest_rank() -> None:
    p = percentiles(range(1, 101))
    assert (p.p50, p.p95, p.p99, p.count) == (50, 95, 99, 100)
    assert percentiles([]) == Percentiles()


def test_merged_percentiles_are_exact_for_one_worker_and_weighted_for_many() -> None:
    one = Percentiles(p50=10, p95=40, p99=90, count=200)
    assert merge_percentiles([one]) == one
    slow = Percentiles(p50=100, p95=400, p99=900, count=200)
    merged = merge_percentiles([one, slow, Percentiles()])
    assert merged.count == 400 and 10 <= merged.p50 <= 100 and merged.p99 == 900
    assert merge_percentiles([Percentiles(p50=1, p95=2, p99=3, count=1), slow]).p50 == 100  # weight counts


def test_totals_survive_worker_restarts_and_departures() -> None:
    total = MonotonicTotal()
    assert total.update({"a": (100, False)}, now=0) == 0  # history from before we watched: not counted
    assert total.update({"a": (110, False), "b": (5, True)}, now=1) == 15  # b started while we watched
    assert total.update({"a": (3, False), "b": (5, True)}, now=2) == 18  # a restarted: 3 new, never negative
    assert total.update({"b": (9, True)}, now=3) == 22  # a left: no change from its absence


def test_rates_over_the_window_never_go_negative() -> None:
    points = [(0.0, 0), (1.0, 10), (2.0, None), (3.0, 30)]
    assert window_rate(points, now=3.0, window=60) == 10.0
    assert window_rate(points, now=3.0, window=1.5) is None  # one known point only
    assert window_rate([(0.0, 5), (1.0, 2)], now=1.0) == 0  # a total that went down counts as no progress
    assert step_rates(points) == [None, 10.0, None, None]


def test_aging_horizon_is_the_age_at_which_an_ad_reaches_the_top() -> None:
    assert [aging_horizon(lvl, 10) for lvl in (1, 2, 3, 4, 5)] == [10, 10, 20, 30, 40]


def test_node_keys_are_one_to_one_and_unchanged_for_plain_ids() -> None:
    """review41 F9: ``node_key`` made every character a key cannot hold ``_``, so ``w:1``, ``w@1``, ``w.1`` and
    ``w_1`` (valid node ids) shared one registry key (before: 1 key for these 4). Now each has its own; the key of an
    id of ``[-.a-zA-Z0-9]`` (every default id on a host named so) is the one it had (a rolling upgrade keeps it), and
    every key is a valid KV key (ADR-8)."""
    import re

    from gamead_core.registry import node_key

    ids = ["w:1", "w@1", "w.1", "w_1", "w=1", "w=5f1", "w=3a1", "w_3a1", "w1", "wé1", "w\u4e2d1", "w:_1", "w_:1", ""]
    keys = [node_key(i) for i in ids]
    assert len(set(keys)) == len(ids), dict(zip(ids, keys, strict=True))
    assert all(re.fullmatch(r"[-_=a-zA-Z0-9]+", k) for k in keys), keys
    for plain in ("api-web1.example.com-4242", "local-1", "worker-A9", "host.a.b-17-01hzyx"):
        assert node_key(plain) == plain.replace(".", "_")  # what the earlier rule made of it


def test_an_entry_gone_before_its_ttl_was_lost_with_the_bucket_and_is_gone_only_once_it_would_have_expired() -> None:
    """gone43: a restarted nats-server empties the memory-stored registry; ``/v1/workers`` listed the API answering
    and two live workers ``gone`` (``gone`` = "its entry expired") for ~3 s. Only ``max_age`` (``registry.ttl``)
    expires an entry, so one that vanished, not deleted, less than ``ttl`` after its last heartbeat went with the
    bucket: held (listed with its last entry) until ``heartbeat_at + ttl``, only then expired (gone). Without the
    rule every vanished entry was expired at once."""
    from gamead_core.registry.gone import lost_early

    beat = T0.timestamp()
    a, b = node(id="a"), node(id="b", heartbeat_at=T0 - timedelta(seconds=4))
    assert lost_early([a, b], now=beat + 1, ttl=10) == ([a, b], [])  # a restart 1 s after a's beat: both held
    assert lost_early([a, b], now=beat + 6, ttl=10) == ([a], [b])  # b's entry would have expired at +6: gone now
    assert lost_early([a, b], now=beat + 10, ttl=10) == ([], [a, b])  # a killed node: gone when its entry expires
    assert lost_early([], now=beat, ttl=10) == ([], [])
