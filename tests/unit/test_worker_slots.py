"""A worker's slots (gamead_core.worker.slots): an ad analysed and being written gives its slot to the next
analysis, for at most ``writing`` ads being written at once (by default ``WRITING_PER_SLOT`` per slot); the pull
loop waits for a free slot on one future, woken by the ad that frees it, or by its timeout."""

from __future__ import annotations

import asyncio

from gamead_core.worker.slots import WRITING_PER_SLOT, SlotWatch


def test_an_analysed_ad_gives_its_slot_back_while_written_at_most_writing_of_them() -> None:
    slots = SlotWatch(2, writing=2)
    assert slots.free(2) == 0  # two analyses running: full
    assert slots.analysed("a")  # its outcome is being written: its slot analyses another meanwhile
    assert slots.free(2) == 1
    slots.analysed("b")
    assert slots.free(2) == 2
    assert slots.free(4) == 0  # c and d analysing, a and b being written
    slots.analysed("c")
    assert not slots.analysed("d")  # two are written already: c and d keep their slots until theirs are
    assert slots.free(4) == 0 and slots.settling == {"a", "b"}
    slots.ended("a")  # written and acknowledged: its task ends
    assert slots.free(3) == 0 and slots.settling == {"b"}
    slots.analysed("c")
    assert slots.free(3) == 1
    assert slots.free(3, blocked=True) == 0  # a suspect ad waits to run alone: nothing starts


def test_by_default_each_slot_may_have_several_ads_being_written_behind_it() -> None:
    slots = SlotWatch(2)
    assert slots.writing == 2 * WRITING_PER_SLOT > 2
    running = 2  # the worker's ads in hand (their tasks), those being written included
    for n in range(slots.writing):  # analysed one after the other, all still being written: each frees its slot
        slots.analysed(n)
        assert slots.free(running) == 1
        running += 1  # the next ad starts in that slot
    slots.analysed("one too many")  # the bound: this one keeps its slot until a write ends
    assert slots.free(running) == 0


def test_the_pull_loop_wakes_when_a_slot_frees_or_after_its_timeout() -> None:
    async def main() -> tuple[bool, bool]:
        slots = SlotWatch(1)
        waiting = asyncio.ensure_future(slots.wait(None))
        await asyncio.sleep(0)
        slots.ended("a")
        woke = await asyncio.wait_for(waiting, 1)
        timed_out = await slots.wait(0.01)
        slots.freed()  # no waiter: nothing to do
        return woke, timed_out

    assert asyncio.run(main()) == (True, False)
