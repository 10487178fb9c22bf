"""One timer for a worker's fixed-delay deadlines (gamead_core.worker.timers) and the attempt time limit on
it (gamead_core.worker.timelimit): callbacks run after their delay, in order, never when removed; a removed
key leaves at once (memory bounded by what is held); an attempt past the limit fails as TaskTimeout while a
shutdown's cancellation still cancels."""

from __future__ import annotations

import asyncio

import pytest

from gamead_core.errors import TaskTimeout
from gamead_core.worker.timelimit import TimeLimit
from gamead_core.worker.timers import Deadlines
from tests.waits import until


def test_deadlines_fire_in_order_after_their_delay_and_never_once_removed() -> None:
    """Each callback runs no sooner than its delay after its (last) add, by the loop's clock (each firing stamps
    it: a sleep in the test would be no proof on a loaded machine, where it can outlast the delay), in order, and
    a removed one never."""
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        fired: list[str] = []
        early: list[tuple[str, float]] = []
        added: dict[str, float] = {}

        def fire(name: str) -> None:
            fired.append(name)
            if loop.time() - added[name] < 0.05 - 1e-6:  # the loop may run a timer its clock resolution early
                early.append((name, loop.time() - added[name]))

        deadlines = Deadlines(0.05)
        for key in ("a", "b", "c", "d"):
            added[key] = loop.time()
            deadlines.add(key, fire, key)
        deadlines.remove("b")
        added["a again"] = loop.time()
        deadlines.add("a", fire, "a again")  # replaced: to the end, its deadline from now
        assert len(deadlines) == 3
        await until(lambda: len(fired) >= 3, timeout=30, what="three callbacks fired")
        assert early == []  # never early
        assert len(deadlines) == 0
        return fired

    assert asyncio.run(main()) == ["c", "d", "a again"]


def test_a_failing_callback_does_not_stop_the_others() -> None:
    async def main() -> list[str]:
        fired: list[str] = []
        deadlines = Deadlines(0.01)

        def boom() -> None:
            raise RuntimeError("boom")

        deadlines.add("x", boom)
        deadlines.add("y", fired.append, "y")
        for _ in range(100):
            if fired:
                break
            await asyncio.sleep(0.01)
        return fired

    assert asyncio.run(main()) == ["y"]


def test_an_attempt_past_the_limit_fails_as_task_timeout_and_a_quick_one_leaves_no_deadline() -> None:
    async def main() -> None:
        limit = TimeLimit(0.05)

        async def quick() -> str:
            return "done"

        async def hang() -> str:
            await asyncio.sleep(10)
            return "never"

        assert await limit.around_attempt(None, quick) == "done"  # type: ignore[arg-type]
        assert len(limit._deadlines) == 0  # noqa: SLF001
        with pytest.raises(TaskTimeout):
            await limit.around_attempt(None, hang)  # type: ignore[arg-type]
        assert len(limit._deadlines) == 0  # noqa: SLF001

        task = asyncio.ensure_future(limit.around_attempt(None, hang))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        task.cancel()  # a shutdown: cancelled, not timed out
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_shortening_the_delay_brings_pending_deadlines_forward_in_order() -> None:
    """The keep-alive's period shrinks when the consumers' live ack_wait is lowered (attack31c F3): a renewal
    armed with the old period must not wait for it."""

    async def main() -> list[str]:
        fired: list[str] = []
        timers = Deadlines(30.0)
        timers.add("a", fired.append, "a")
        timers.add("b", fired.append, "b")
        timers.shorten(0.05)
        await until(lambda: len(fired) >= 2, timeout=5, what="both renewals fired")
        return fired

    assert asyncio.run(main()) == ["a", "b"]
