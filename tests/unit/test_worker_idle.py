"""The pull loop's idle wait (``worker.idle.IdleWait``, issue 14): awaited in the loop's own task, ended by the
stop's cut without a trace, while a cancellation from outside still ends the loop; how long the worker's long
polls wait at the server (``worker.idle.poll_life``, flake46)."""

from __future__ import annotations

import asyncio

import pytest

from gamead_core.config import GameadSettings
from gamead_core.worker.idle import IdleWait, poll_life, puller_settings


async def _forever() -> None:
    await asyncio.get_running_loop().create_future()


async def _swallowing(done: asyncio.Event) -> None:
    try:
        await asyncio.get_running_loop().create_future()
    except asyncio.CancelledError:  # a wait that swallows it: the cut must still be taken back
        pass
    done.set()


async def _run(work_of: object, *, cut: bool, outside: bool) -> tuple[str, int]:
    idle = IdleWait()
    outcome = "returned"
    cancelling = -1

    async def loop() -> None:
        nonlocal outcome, cancelling
        try:
            await idle.wait(work_of())  # type: ignore[operator]
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            cancelling = asyncio.current_task().cancelling()  # type: ignore[union-attr]

    task = asyncio.ensure_future(loop())
    await asyncio.sleep(0)
    if cut:
        idle.cut()
    if outside:
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return outcome, cancelling


@pytest.mark.parametrize(("cut", "outside", "expected"), [
    (True, False, ("returned", 0)),  # the stop: the wait ends, nothing left of the cancellation
    (False, True, ("cancelled", 1)),  # the worker cancelled from outside: it goes on
    (True, True, ("cancelled", 1)),  # both: the outside one goes on
])
def test_the_cut_ends_the_wait_and_only_the_cut_is_taken_back(cut: bool, outside: bool,
                                                                expected: tuple[str, int]) -> None:
    assert asyncio.run(_run(_forever, cut=cut, outside=outside)) == expected


def test_a_cut_the_wait_swallowed_is_taken_back_too() -> None:
    async def main() -> tuple[tuple[str, int], bool]:
        done = asyncio.Event()
        result = await _run(lambda: _swallowing(done), cut=True, outside=False)
        return result, done.is_set()

    assert asyncio.run(main()) == (("returned", 0), True)


def test_a_cut_while_not_waiting_does_nothing() -> None:
    async def main() -> str:
        idle = IdleWait()
        idle.cut()  # the loop is elsewhere (pulling): it checks the stop before it waits again
        await idle.wait(asyncio.sleep(0))
        return "returned"

    assert asyncio.run(main()) == "returned"


@pytest.mark.parametrize(("ttl", "beat", "life"),
                         [(10.0, 2.0, 5.0), (3.0, 0.5, 2.25), (1.0, 0.5, 0.5), (60.0, 5.0, 5.0), (4.0, 2.0, 1.0)])
def test_a_long_poll_is_gone_an_interval_before_a_frozen_workers_entry_expires(ttl: float, beat: float,
                                                                              life: float) -> None:
    """idle_wait 5 s, idle_poll 0.5 s: the defaults (ttl 10 s, beat 2 s) keep 5 s; ttl 3 s cuts it to 2.25 s, so a
    worker frozen at F (last beat F − 0.5 s or later, entry gone F + 2.5 s or later) has none left at F + 2.25 s;
    never below idle_poll (a worker looks again that often)."""
    assert poll_life(5.0, 0.5, ttl, beat) == life
    settings = GameadSettings.model_validate({"registry": {"ttl": ttl, "heartbeat_interval": beat}})
    assert puller_settings(settings).idle_wait == life
    assert settings.queue.idle_wait == 5.0  # the node's own setting is left as it is (the topology, doctor, …)
