"""Priority with aging: the level choice is a pure function of head ages and the aging step."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gamead_core.queue.aging import LevelHead, effective_level, level_score, pull_order

STEP = 10.0


def heads(**ages: float) -> list[LevelHead]:
    """heads(p1=0, p5=45) → one pending ad per named level with that head age."""
    return [LevelHead(int(k[1:]), 1, v) for k, v in ages.items()]


def test_fresh_ads_are_served_most_urgent_first() -> None:
    assert pull_order(heads(p5=0, p1=0, p3=0), STEP) == [1, 3, 5]


def test_empty_levels_are_never_chosen() -> None:
    order = pull_order([LevelHead(1, 0, 999), LevelHead(4, 2, 0)], STEP)
    assert order == [4]


def test_an_ad_climbs_one_level_per_aging_step() -> None:
    # 25 s old at level 5 competes like a fresh level 2.5 ad: behind fresh p1 and p2, ahead of fresh p3.
    assert pull_order(heads(p1=0, p2=0, p3=0, p5=25), STEP) == [1, 2, 5, 3]


def test_an_old_low_priority_ad_outranks_fresh_urgent_ones() -> None:
    assert pull_order(heads(p1=0, p5=41), STEP)[0] == 5


def test_ties_go_to_the_more_urgent_level() -> None:
    # p5 aged exactly 4 steps scores 1.0, like a fresh p1: the p1 ad goes first.
    assert pull_order(heads(p1=0, p5=40), STEP) == [1, 5]


def test_the_aging_step_sets_the_pace() -> None:
    assert pull_order(heads(p1=0, p5=5), aging_step=1.0)[0] == 5
    assert pull_order(heads(p1=0, p5=5), aging_step=10.0)[0] == 1


def test_effective_level_for_display() -> None:
    assert effective_level(5, 0, STEP) == 5
    assert effective_level(5, 25, STEP) == 3
    assert effective_level(5, 1000, STEP) == 1


def test_score_rejects_a_non_positive_step() -> None:
    import pytest

    with pytest.raises(ValueError):
        level_score(1, 0, 0)


ages = st.floats(min_value=0, max_value=10_000, allow_nan=False)


@given(level=st.integers(2, 5), age=ages, step=st.floats(0.1, 100))
def test_nothing_starves(level: int, age: float, step: float) -> None:
    """Once an ad has waited (level − 1) steps plus a moment, it beats any fresh urgent ad."""
    old_enough = (level - 1) * step + step * 0.01
    order = pull_order([LevelHead(1, 5, 0.0), LevelHead(level, 1, max(age, old_enough))], step)
    assert order[0] == level


@given(a=ages, b=ages, level=st.integers(1, 5))
def test_older_heads_never_lose_ground(a: float, b: float, level: int) -> None:
    older, younger = max(a, b), min(a, b)
    assert level_score(level, older, STEP) <= level_score(level, younger, STEP)


@given(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 3), ages), max_size=5, unique_by=lambda t: t[0]))
def test_order_lists_each_non_empty_level_once(items: list[tuple[int, int, float]]) -> None:
    order = pull_order([LevelHead(lvl, n, age) for lvl, n, age in items], STEP)
    assert sorted(order) == sorted(lvl for lvl, n, _ in items if n > 0)


# --- due redeliveries (retries, hand-backs) age like new ads ---------------------------------------------


def test_a_level_with_only_a_due_retry_is_served() -> None:
    assert pull_order([LevelHead(1, 3, 0.0), LevelHead(5, 0, 0.0, ack_pending=1, due=1, due_age=41)], STEP)[0] == 5
    assert pull_order([LevelHead(5, 0, 0.0, ack_pending=1, due=0)], STEP) == []  # in flight, or not due yet


def test_a_level_waits_as_long_as_its_most_patient_ad() -> None:
    head = LevelHead(4, 2, head_age=3.0, ack_pending=1, due=1, due_age=25.0)
    assert head.ready == 3 and head.wait == 25.0
    assert LevelHead(4, 0, head_age=99.0, due=1, due_age=5.0).wait == 5.0  # no new ad: its head age is stale


levels = st.integers(1, 5)
waits = st.floats(min_value=0, max_value=1_000, allow_nan=False)


@given(st.lists(st.tuples(levels, st.integers(0, 3), waits, st.integers(0, 2), waits), min_size=1, max_size=5,
                unique_by=lambda t: t[0]))
def test_the_order_is_earliest_due_time_plus_level_steps(items: list[tuple[int, int, float, int, float]]) -> None:
    """The README's bound: served in the order of (became due) + level × aging_step, so an ad due at
    priority p goes before any ad of priority q < p that became due more than (p − q) steps after it."""
    heads = [LevelHead(lvl, n, age, ack_pending=d, due=d, due_age=dage) for lvl, n, age, d, dage in items]
    order = pull_order(heads, STEP)
    key = {h.level: (h.level * STEP - h.wait, h.level) for h in heads if h.ready}
    assert order == sorted(key, key=lambda lvl: key[lvl])


def _listed_wait(head: LevelHead) -> float:
    """``LevelHead.wait`` as it was written before cpuworker48 (a list per call): the reference."""
    ages = ([max(head.head_age, 0.0)] if head.pending > 0 else []) + ([max(head.due_age, 0.0)] if head.due > 0 else [])
    return max(ages, default=0.0)


signed = st.floats(min_value=-50, max_value=1_000, allow_nan=False)


@given(st.lists(st.tuples(levels, st.integers(0, 3), signed, st.integers(0, 2), signed), min_size=0, max_size=5,
                unique_by=lambda t: t[0]), st.sampled_from([0.5, 2.0, 10.0]))
def test_the_wait_and_the_order_are_the_listed_ones(items: list[tuple[int, int, float, int, float]],
                                                    step: float) -> None:
    """The pull loop's cheaper ``wait`` and ``pull_order`` (no list per level, the step checked once) give what the
    listed ``wait`` and ``level_score`` gave, negative ages (a clock ahead) and empty levels included."""
    heads = [LevelHead(lvl, n, age, due=d, due_age=dage) for lvl, n, age, d, dage in items]
    for head in heads:
        assert head.wait == _listed_wait(head)
    listed = sorted((h for h in heads if h.ready > 0), key=lambda h: (level_score(h.level, _listed_wait(h), step),
                                                                       h.level))
    assert pull_order(heads, step) == [h.level for h in listed]


def test_a_step_of_zero_is_refused_only_when_a_level_is_ready() -> None:
    assert pull_order([LevelHead(1, 0, 3.0)], 0.0) == []
    try:
        pull_order([LevelHead(1, 1, 3.0)], 0.0)
    except ValueError as exc:
        assert "aging_step must be positive" in str(exc)
    else:
        raise AssertionError("a ready level with aging_step 0 was ordered")
