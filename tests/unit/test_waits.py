"""tests.waits.until, the one async wait on state of the tests: what a failing wait says, and what it gives back."""

from __future__ import annotations

import asyncio

import pytest

from tests.waits import until


def test_a_wait_that_times_out_names_the_state_its_callable_what_tells_then() -> None:
    """``what`` as a callable is asked once, at the deadline: the message says the state the wait ended in (the
    modules that had their own loop put the state seen last in their message: test_dlq_heal, test_takeover_audited)."""
    state = {"seen": 0}
    asked: list[int] = []

    def probe() -> bool:
        state["seen"] += 1
        return False

    def told() -> str:
        asked.append(state["seen"])
        return f"the state after {state['seen']} looks"

    with pytest.raises(AssertionError, match=r"waiting for the state after \d+ looks \(last: False\)"):
        asyncio.run(until(probe, timeout=0.05, what=told))
    assert asked == [state["seen"]]


def test_an_async_probe_s_value_is_returned_and_interval_0_looks_at_every_turn_of_the_loop() -> None:
    """An async probe is awaited and its first truthy value returned; ``interval=0`` looks again at each turn of the
    loop (another task's 5 turns: at most 6 looks), never a pause that skips turns."""
    turns: list[int] = []
    looks: list[int] = []

    async def main() -> list[int]:
        async def other() -> None:
            for i in range(5):
                turns.append(i)
                await asyncio.sleep(0)

        task = asyncio.create_task(other())

        async def probe() -> list[int] | None:
            looks.append(len(turns))
            return list(turns) if len(turns) == 5 else None

        found = await until(probe, timeout=10, interval=0, what="five turns")
        await task
        return found

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    assert looks == sorted(set(looks)) and len(looks) <= 6, looks


def test_a_probe_that_never_returns_ends_the_wait_and_says_so() -> None:
    """Session 57's fc5: an async probe that never returned held ``until`` (and test_reaper_sweep_failing) for
    pytest's whole 300 s, the step unnamed. Now it is cut a whole timeout past the deadline and named; before, this
    wait never ended (the outer 10 s bound here said so)."""
    async def never() -> bool:
        await asyncio.Event().wait()
        return True

    with pytest.raises(AssertionError, match="waiting for the answer: a probe never returned"):
        asyncio.run(asyncio.wait_for(until(never, timeout=0.05, what="the answer"), 10))
