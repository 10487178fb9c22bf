"""gamead_core.collector: a role's start-up is frozen out of later collections, and collections are rarer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gamead_core import collector


@pytest.fixture
def restored() -> Iterator[None]:
    """This pytest process's own tuning (tests/conftest.py) as it was, whatever the test did to it."""
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)
    if frozen:
        gc.freeze()


def test_tune_freezes_what_exists_and_raises_every_threshold(restored: None) -> None:
    gc.unfreeze()
    made_before = object.__new__(type("MadeAtStartUp", (), {}))
    collector.tune()
    assert gc.get_freeze_count() > 0  # start-up's objects, this one among them, are out of every collection
    assert not any(made_before is o for o in gc.get_objects())
    assert gc.get_threshold() == (50_000, 20, 100)
    assert all(new > default for new, default in zip(gc.get_threshold(), (700, 10, 10), strict=True))


def test_a_cycle_made_later_is_still_collected_and_a_higher_threshold_is_kept(restored: None) -> None:
    gc.set_threshold(100_000, 10, 10)  # set higher by someone before: never lowered
    collector.tune()
    assert gc.get_threshold() == (100_000, 20, 100)
    cycle: list[object] = []
    cycle.append(cycle)  # a cycle made while serving
    del cycle
    assert gc.collect() >= 1
