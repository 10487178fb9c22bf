"""Backlog hints (gamead_core.queue.long_poll): levels noted during a quiet spell shorter than one aging step are
served most urgent level first, and that is the aging rule's own order (issue 14, steady state)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gamead_core.queue.aging import due_key, level_order_is_aging_order


@given(
    levels=st.lists(st.integers(1, 5), min_size=1, max_size=5, unique=True),
    step=st.floats(0.01, 600),
    spell_share=st.floats(0, 0.999),
    age_shares=st.lists(st.floats(0, 1, exclude_max=True), min_size=5, max_size=5),
    now=st.floats(1e9, 2e9),
)
def test_level_order_is_the_aging_order_inside_one_step(levels: list[int], step: float, spell_share: float,
                                                         age_shares: list[float], now: float) -> None:
    spell = spell_share * step
    assert level_order_is_aging_order(levels, spell, step)
    # each level's head waited less than the spell (nothing waited when it began)
    keys = {lvl: due_key(lvl, now - age_shares[i] * spell, step) for i, lvl in enumerate(levels)}
    assert sorted(levels, key=keys.__getitem__) == sorted(levels)


def test_a_long_spell_or_a_level_in_two_partitions_takes_the_ordered_look() -> None:
    assert not level_order_is_aging_order([1, 3], 10.0, 10.0)  # a wait of a whole step can reorder levels
    assert not level_order_is_aging_order([3, 3], 0.1, 10.0)  # which partition's head is older is not known
    # the reason, in figures: a level-3 head that waited 25 s beats a fresh level-1 ad (step 10 s)
    assert due_key(3, 1000.0 - 25, 10.0) < due_key(1, 1000.0, 10.0)
