"""A worker's slots (gamead_core.worker.slots): an ad analysed and being written gives its slot to the next
analysis, for at most ``writing`` ads being written at once (by default ``WRITING_PER_SLOT`` per slot); the pull
loop waits for a free slot on one future, woken by the ad that frees it, or by its timeout."""

from __future__ import annotations

import asyncio
import time

import pytest

from gamead_core.worker.prefetch import next_pace, prefetch_depth
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


def test_a_slots_pace_ends_when_the_slot_is_given_back_not_when_the_outcome_is_written(monkeypatch) -> None:
    # session 33: timed to the written outcome, a burn-down's pace swung with the KV acks' delay, the prefetch depth
    # with it, and each swing down handed buffered ads back to be delivered, pulled and read again
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    slots = SlotWatch(1)
    assert slots.pace is None  # nothing timed yet: no prefetch (prefetch_depth)
    slots.took("a")
    now[0] += 0.002  # analysed in 2 ms
    assert slots.analysed("a")
    now[0] += 0.050  # its outcome's write acknowledged 50 ms later
    slots.ended("a")
    assert slots.pace == pytest.approx(0.002)
    assert prefetch_depth(32, 1, slots.pace, 0.05) == 25  # what the slot finishes in worker.prefetch_wait
    slots.took("b")
    now[0] += 0.012  # a failed attempt: its slot is held to the end
    slots.ended("b")
    assert slots.pace == pytest.approx(next_pace(0.002, 0.012))


def test_the_pull_loops_waits_share_one_timer_armed_again_only_for_an_earlier_timeout() -> None:
    """drain46: the pull loop waits once per start step, each for about the buffer's stall; one timer serves
    successive waits whose timeouts end later (a wait it ends early returns False: the loop looks again), and a
    wait that must end sooner arms its own, which ends it on time; a new event loop arms its own."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        slots = SlotWatch(1)
        first = asyncio.ensure_future(slots.wait(0.3))
        await asyncio.sleep(0)
        slots.freed()
        assert await first is True
        timer = slots._timer
        later = asyncio.ensure_future(slots.wait(5.0))  # ends after the armed one: no new timer
        await asyncio.sleep(0)
        assert slots._timer is timer
        t0 = loop.time()
        assert await asyncio.wait_for(later, 2) is False  # woken by the earlier timer (0.3 s), not after 5 s
        assert loop.time() - t0 < 2 and slots._timer is None
        slots_timer_before = asyncio.ensure_future(slots.wait(5.0))
        await asyncio.sleep(0)
        assert slots._timer is not None and slots._timer[2] > loop.time() + 4  # armed for its own timeout
        sooner = slots._timer
        slots.freed()
        assert await slots_timer_before is True
        assert await slots.wait(0.05) is False  # must end sooner than the armed 5 s: its own timer, on time
        assert slots._timer is not sooner

    asyncio.run(main())
    slots = SlotWatch(1)

    async def once() -> bool:
        return await slots.wait(0.05)

    assert asyncio.run(once()) is False and asyncio.run(once()) is False  # each loop arms its own
