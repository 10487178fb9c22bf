"""gamead_core.collector: a role's start-up is frozen out of later collections, collections are rarer, and a
sweep frees what the rarer collections leave waiting."""

from __future__ import annotations

import asyncio
import gc
import weakref
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


class _Connection:
    """A connection's objects as a burst leaves them: a cycle (uvicorn's protocol and its transport and cycle)."""

    def __init__(self) -> None:
        self.me = self


def test_a_sweep_frees_a_bursts_cycles_that_no_threshold_reaches(restored: None) -> None:
    """attack38b F6: after 5,000 keep-alive connections an idle API kept their 157,329 objects (88 → 155 MB RSS):
    each connection, alive at a young collection, had moved to the oldest generation, walked every 2,000 young
    collections and never at idle. The collector off stands for "no threshold is reached": only a sweep frees
    them, within a few of its periods."""

    async def main() -> int:
        burst = [_Connection() for _ in range(5_000)]
        refs = [weakref.ref(c) for c in burst]
        del burst
        sweeps = collector.start_sweeps(every=0.01)
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while any(r() is not None for r in refs) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
        finally:
            sweeps.cancel()
        return sum(r() is not None for r in refs)

    gc.disable()
    try:
        kept = asyncio.run(main())
    finally:
        gc.enable()
    assert kept == 0, f"{kept} of 5,000 connections' cycles still kept after the sweeps"


def test_a_sweep_that_raises_does_not_stop_the_next(restored: None, monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []

    def flaky() -> int:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("first sweep fails")
        return 0

    monkeypatch.setattr(collector, "sweep", flaky)

    async def main() -> None:
        sweeps = collector.start_sweeps(every=0.01)
        deadline = asyncio.get_running_loop().time() + 30
        while len(runs) < 2 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        sweeps.cancel()

    asyncio.run(main())
    assert len(runs) >= 2
