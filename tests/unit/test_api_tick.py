"""idle55: an idle API's server loop wakes once per second of the service clock (to rewrite the Date header), not
uvicorn's every 0.1 s, and a stop (``should_exit``) still ends it at once, without waiting for that tick."""

from __future__ import annotations

import asyncio

import uvicorn

from gamead_core import clock
from gamead_core.api.acceptor import TICK_PAST, AcceptingServer, till_next_second


class _Counted(AcceptingServer):
    """The API's server whose ticks are noted (the service clock's time of each)."""

    def __init__(self) -> None:
        super().__init__(uvicorn.Config(app=lambda *a: None, log_config=None))
        self.ticks: list[float] = []
        self.enough = asyncio.Event()

    async def on_tick(self, counter: int) -> bool:
        self.ticks.append(clock.now())
        if len(self.ticks) >= 4:
            self.enough.set()
        return await super().on_tick(counter)


def test_the_next_tick_is_just_past_the_next_second() -> None:
    assert till_next_second(100.0) == 1 + TICK_PAST
    assert abs(till_next_second(100.75) - (0.25 + TICK_PAST)) < 1e-9
    assert 0 < till_next_second(100.999999) <= 2 * TICK_PAST


def test_an_idle_server_ticks_once_per_second_of_the_service_clock() -> None:
    async def run() -> list[float]:
        server = _Counted()
        loop = asyncio.ensure_future(server.main_loop())
        await asyncio.wait_for(server.enough.wait(), 30)
        server.should_exit = True
        await asyncio.wait_for(loop, 30)
        return server.ticks

    ticks = asyncio.run(run())
    seconds = [int(t) for t in ticks[1:4]]  # the first runs at start, anywhere in its second
    assert len(set(seconds)) == len(seconds)  # before: ~10 ticks in each second


def test_a_stop_ends_the_loop_without_waiting_for_the_next_tick() -> None:
    async def run() -> tuple[int, int]:
        server = _Counted()
        loop = asyncio.ensure_future(server.main_loop())
        while not server.ticks:
            await asyncio.sleep(0)
        before = len(server.ticks)
        asyncio.get_running_loop().call_soon(setattr, server, "should_exit", True)
        await asyncio.wait_for(loop, 30)
        return before, len(server.ticks)

    before, after = asyncio.run(run())
    assert after == before + 1  # the loop ends at the tick that sees the stop
