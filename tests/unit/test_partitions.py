"""Pure: partitioned work streams (issue 14, item 5) — the partition of an ad, the wire names of a partition, a
level read over partitions, and the rule that a start never changes the partitions on its own (only
``queue.repartition`` on a drained queue does)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.queue.aging import LevelHead
from gamead_core.queue.depth import LevelDepth
from gamead_core.queue.part_heads import by_wait, merge_heads
from gamead_core.queue.partitions import (
    merge_depths,
    partition_change,
    partition_of,
    per_partition_limit,
    settle_by,
    settle_rule,
    work_streams,
)
from gamead_core.queue.topology_plan import Snapshot, stream_config, wanted_topology


def _settings(partitions: int) -> GameadSettings:
    return GameadSettings.model_validate({"queue": {"partitions": partitions}})


# --- names -------------------------------------------------------------------------------------------------


def test_one_partition_is_exactly_the_single_stream_of_before() -> None:
    assert names.work_stream(0) == names.ADS_STREAM == "GAMEAD_ADS"
    assert names.work_wildcard(0) == names.ADS_SUBJECT_WILDCARD == "gamead.ads.*"
    assert [names.level_subject(lvl) for lvl in names.LEVELS] == [f"gamead.ads.p{lvl}" for lvl in names.LEVELS]
    assert [names.level_consumer(lvl) for lvl in names.LEVELS] == [f"gamead-p{lvl}" for lvl in names.LEVELS]
    one = wanted_topology(GameadSettings())
    streams = [w.name for w in one if w.kind == "stream"]
    assert [s for s in streams if names.partition_of_stream(s) is not None] == ["GAMEAD_ADS"]
    assert sorted(w.name for w in one if w.kind == "consumer") == [f"gamead-p{lvl}" for lvl in names.LEVELS]
    config = stream_config(GameadSettings().queue)
    assert (config.subjects, config.max_msgs, config.max_bytes) == (["gamead.ads.*"], 1_000_000, 1024**3)


def test_three_partitions_have_three_streams_with_disjoint_subjects_and_their_own_consumers() -> None:
    wanted = wanted_topology(_settings(3))
    streams = {w.name: w.config for w in wanted if w.kind == "stream" and names.partition_of_stream(w.name) is not None}
    assert list(streams) == ["GAMEAD_ADS", "GAMEAD_ADS_1", "GAMEAD_ADS_2"]
    assert [c.subjects for c in streams.values()] == [["gamead.ads.*"], ["gamead.ads.1.*"], ["gamead.ads.2.*"]]
    consumers = [(w.stream, w.name, w.config.filter_subject) for w in wanted if w.kind == "consumer"]  # type: ignore[union-attr]
    assert len(consumers) == 15 and len({c[1] for c in consumers}) == 15  # one label names one consumer
    assert ("GAMEAD_ADS_2", "gamead-2-p3", "gamead.ads.2.p3") in consumers
    assert all(w.essential for w in wanted if w.name in streams)
    # the limits are the setting summed over the partitions; every partition has the replicas setting
    assert [c.max_msgs for c in streams.values()] == [333_334] * 3
    replicated = wanted_topology(GameadSettings.model_validate({"queue": {"partitions": 3, "replicas": 3}}))
    assert {w.config.num_replicas for w in replicated if w.name in streams} == {3}  # type: ignore[union-attr]
    assert {(c.metadata or {}).get(names.PARTITIONS_METADATA) for c in streams.values()} == {"3"}


def test_a_partition_subject_never_matches_another_partitions_wildcard() -> None:
    def matches(pattern: str, subject: str) -> bool:
        p, s = pattern.split("."), subject.split(".")
        return len(p) == len(s) and all(a in ("*", b) for a, b in zip(p, s))

    for p in range(5):
        for q in range(5):
            for lvl in names.LEVELS:
                assert matches(names.work_wildcard(q), names.level_subject(lvl, p)) == (p == q)


@pytest.mark.parametrize("bad", [-1, names.MAX_PARTITIONS, "1", 1.0, True, None])
def test_a_partition_number_is_validated_before_it_is_a_name(bad: object) -> None:
    for build in (names.work_stream, names.work_wildcard, lambda p: names.level_subject(1, p),
                  lambda p: names.level_consumer(1, p)):
        with pytest.raises(ValueError):
            build(bad)


@pytest.mark.parametrize(("stream", "partition"), [
    ("GAMEAD_ADS", 0), ("GAMEAD_ADS_1", 1), ("GAMEAD_ADS_63", 63), ("GAMEAD_ADS_0", None), ("GAMEAD_ADS_01", None),
    ("GAMEAD_ADS_64", None), ("GAMEAD_ADS_X", None), ("GAMEAD_DLQ", None), ("KV_gamead_ads", None),
])
def test_a_stream_name_is_a_partition_only_when_gamead_would_name_it_so(stream: str, partition: int | None) -> None:
    assert names.partition_of_stream(stream) == partition


def test_ack_subjects_of_every_partitions_level_consumers_are_work_ack_subjects() -> None:
    assert names.is_work_ack_subject("$JS.ACK.GAMEAD_ADS_2.gamead-2-p3.1.5.5.1764500000000000000.0")
    assert names.is_work_ack_subject("$JS.ACK.hub.ACCHASH.GAMEAD_ADS_1.gamead-1-p5.1.5.5.1764500000.0.tok")
    assert not names.is_work_ack_subject("$JS.ACK.GAMEAD_ADS_2.gamead-p3.1.5.5.1764500000000000000.0")
    assert not names.is_work_ack_subject("$JS.ACK.GAMEAD_ADS_01.gamead-1-p3.1.5.5.1764500000000000000.0")


# --- the partition of an ad ----------------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=40), st.integers(1, names.MAX_PARTITIONS))
def test_the_partition_is_in_range_and_one_partition_is_always_zero(ad_id: str, n: int) -> None:
    assert 0 <= partition_of(ad_id, n) < n
    assert partition_of(ad_id, 1) == 0


def test_the_partition_is_the_same_in_another_process() -> None:
    """Python's ``hash`` of a string is salted per process; the partition must not be."""
    ids = [new_ad_id() for _ in range(20)]
    here = [partition_of(i, 7) for i in ids]
    code = ("import sys; from gamead_core.queue.partitions import partition_of; "
            "print(','.join(str(partition_of(i, 7)) for i in sys.argv[1:]))")
    there = subprocess.run([sys.executable, "-c", code, *ids], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345"}).stdout.strip()
    assert there == ",".join(map(str, here))


def test_ad_ids_spread_evenly_over_three_partitions() -> None:
    counts = Counter(partition_of(new_ad_id(), 3) for _ in range(3000))
    assert sorted(counts) == [0, 1, 2]
    assert all(800 <= n <= 1200 for n in counts.values()), counts  # 1,000 each ± 20 %


def test_a_limit_is_split_so_the_partitions_sum_to_the_setting() -> None:
    assert per_partition_limit(1_000_000, 1) == 1_000_000
    assert per_partition_limit(1_000_000, 3) == 333_334
    assert per_partition_limit(-1, 3) == -1
    assert work_streams(3) == ("GAMEAD_ADS", "GAMEAD_ADS_1", "GAMEAD_ADS_2")


# --- a level over partitions ---------------------------------------------------------------------------------


def test_a_levels_view_sums_counts_and_keeps_the_oldest_head() -> None:
    depths = {0: LevelDepth(2, 3, 1, 0, 4.0, 10, 12), 1: LevelDepth(2, 0, 2, 1, None, 7, 9),
              2: LevelDepth(2, 5, 0, 0, 9.5, 3, 3)}
    merged = merge_depths(2, depths.values())
    assert (merged.pending, merged.ack_pending, merged.redelivered, merged.oldest_age) == (8, 3, 1, 9.5)
    assert (merged.ack_floor, merged.delivered_seq) == (0, 0)  # sequences of different streams do not add up
    assert merge_depths(2, [depths[0]]) == depths[0]


def test_a_levels_pull_goes_to_its_most_patient_partition_first_due_retries_counted() -> None:
    """chaos48 F2: partition 1's only waiting ads are retries due 8 s; partition 0 has a new ad of 4 s. Before, the
    pull went to the oldest *new* ad first (partition 0), so the level, scored by its retries, served fresh ads."""
    heads = {0: LevelHead(2, 3, 4.0, 1), 1: LevelHead(2, 0, 0.0, 2, 2, 8.0), 2: LevelHead(2, 5, 9.5),
             3: LevelHead(2, 0, 0.0, 4)}
    # then the partition with only ads in flight (a redelivery may have come due there unseen); an empty one never
    assert by_wait({**heads, 4: LevelHead(2, 0, 0.0)}) == [2, 1, 0, 3]
    merged = merge_heads(2, list(heads.values()))
    assert merged == LevelHead(2, 8, 9.5, 7, 2, 8.0)  # counts summed, each kind's longest wait
    assert merge_heads(2, [heads[1]]) is heads[1]
    assert merge_heads(2, [heads[0], heads[3]]).due_age == 0.0  # no due ad: no due wait


# --- changing queue.partitions -------------------------------------------------------------------------------


def _existing(settings_made_with: int, partitions: range, held: int = 0, *, legacy: bool = False) -> Snapshot:
    made = wanted_topology(_settings(settings_made_with))
    streams = {w.name: w.config for w in made if w.kind == "stream"}
    streams = {k: v for k, v in streams.items()
               if names.partition_of_stream(k) is None or names.partition_of_stream(k) in partitions}
    if legacy:
        streams["GAMEAD_ADS"] = streams["GAMEAD_ADS"].evolve(metadata=None)  # type: ignore[union-attr]
    return Snapshot(streams, {}, held={"GAMEAD_ADS": held})  # type: ignore[arg-type]


def test_the_same_setting_or_a_deleted_partition_stream_is_no_change() -> None:
    assert partition_change(3, {}) is None  # a new installation
    assert partition_change(3, _existing(3, range(3), held=12).work_streams()) is None
    assert partition_change(3, _existing(3, range(2), held=12).work_streams()) is None  # one deleted: recreated
    assert partition_change(1, _existing(1, range(1), held=5, legacy=True).work_streams()) is None  # before 14.5


@pytest.mark.parametrize(("made", "exists", "setting"), [(1, range(1), 3), (3, range(3), 1), (3, range(3), 2),
                                                          (2, range(2), 3)])
def test_another_setting_on_a_live_queue_is_refused_in_one_line(made: int, exists: range, setting: int) -> None:
    change = partition_change(setting, _existing(made, exists, held=12).work_streams())
    assert change is not None and not change.drained
    line = change.describe()
    assert "\n" not in line and f"queue.partitions is {setting}" in line and "holding 12 ad(s)" in line
    assert "GAMEAD_ADS" in line and "README" in line
    assert change.removed == tuple(p for p in exists if p >= setting)


def test_a_legacy_single_stream_then_three_partitions_is_a_change() -> None:
    change = partition_change(3, _existing(1, range(1), held=0, legacy=True).work_streams())
    assert change is not None and change.drained and change.removed == ()


# --- the rule: a start's own setting never changes the streams ----------------------------------------------


@given(made=st.integers(1, 8), setting=st.integers(1, 8), held=st.integers(0, 50), update=st.booleans())
def test_a_start_without_repartition_never_changes_the_streams_drained_or_not(made: int, setting: int, held: int,
                                                                              update: bool) -> None:
    """The reviewer's stray worker: 3 partitions, a start with the default 1, queue empty (held 0): refused."""
    change = partition_change(setting, _existing(made, range(made), held=held).work_streams())
    decision = settle_rule(change, repartition=False, update=update)
    assert decision == ("none" if made == setting else "refuse")


def test_the_stray_one_partition_start_on_an_empty_three_partition_queue_is_refused_naming_both_values() -> None:
    change = partition_change(1, _existing(3, range(3), held=0).work_streams())
    assert change is not None and change.drained and change.removed == (1, 2)
    assert settle_rule(change, repartition=False, update=True) == "refuse"
    line = change.describe()
    assert "\n" not in line and "queue.partitions is 1" in line and "queue.partitions 3" in line
    assert "set queue.partitions back to 3" in line and "queue.repartition: true" in line


@pytest.mark.parametrize(("held", "update", "expected"), [(0, True, "change"), (4, True, "refuse"),
                                                          (0, False, "refuse"), (4, False, "refuse")])
def test_repartition_changes_only_a_drained_queue_at_start_up(held: int, update: bool, expected: str) -> None:
    """``queue.repartition`` is obeyed only at a start-up check (never the API's running watch, nor the doctor)
    and only when every work stream is empty."""
    change = partition_change(1, _existing(3, range(3), held=held).work_streams())
    assert settle_rule(change, repartition=True, update=update) == expected
    assert settle_rule(None, repartition=True, update=update) == "none"


def test_a_stale_node_is_told_the_queues_partitions_and_the_fix() -> None:
    """attack25c finding 2: a node with 3 partitions after a repartition to 5 is told both, and the fix."""
    from gamead_core.queue.partitions import partition_change

    change = partition_change(3, {p: (5, 0) for p in range(5)})
    assert change is not None and change.live == 5
    assert change.stale_node() == ("the queue has 5 partitions, this node is configured for 3 — restart it with "
                                   "queue.partitions=5")
    mixed = partition_change(3, {0: (5, 0), 1: (3, 0), 2: (3, 0)})  # a repartition half done: no count claimed
    assert mixed is not None and mixed.live is None
    assert "made with queue.partitions 3/5" in mixed.stale_node() and "queue has" not in mixed.stale_node()


def test_an_unanswered_publish_is_repeated_by_the_queues_partitions_only_once_its_stream_is_gone() -> None:
    """repart38 (attack38a F2: 1 ad of 4,800 left ``queued`` without a message): a node on 3 partitions repeated
    a publish into partition 2 after a repartition 3 → 1 had deleted GAMEAD_ADS_2, for ever. Its stream gone and
    the change done, the repeat goes by the live partitions; while its stream exists (a first try may be there,
    deduplicated only by that stream), or the streams were made with two settings (no live one), by the node's own."""
    ids = [new_ad_id() for _ in range(60)]
    lost = next(i for i in ids if partition_of(i, 3) == 2)
    kept = next(i for i in ids if partition_of(i, 3) == 0)
    done = partition_change(3, {0: (1, 0)})  # 3 → 1 done: GAMEAD_ADS alone, made with 1
    assert done is not None and done.live == 1
    assert settle_by(lost, 3, done) == 1
    assert settle_by(kept, 3, done) == 3  # GAMEAD_ADS is still there: repeated where a first try may be
    assert settle_by(lost, 3, None) == 3  # the streams fit
    mixed = partition_change(3, {0: (1, 0), 1: (3, 0)})  # streams made with two settings: no live one to go by
    assert mixed is not None and mixed.live is None and settle_by(lost, 3, mixed) == 3
    grown = partition_change(3, {p: (5, 0) for p in range(5)})  # 3 → 5: every old partition's stream is kept
    assert grown is not None and grown.live == 5 and settle_by(lost, 3, grown) == 3
    shrunk = partition_change(3, {0: (2, 0), 1: (2, 0)})  # 3 → 2
    assert shrunk is not None and settle_by(lost, 3, shrunk) == 2
