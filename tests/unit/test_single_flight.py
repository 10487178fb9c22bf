"""One run per key, shared (gamead_core.single_flight): the rule both shared reads keep, the DLQ/audit pages of
dashboards (attack37 F1) and a job's document its progress streams poll (attack47 F5), without servers."""

from __future__ import annotations

import asyncio

import pytest

from gamead_core.errors import NotFound
from gamead_core.single_flight import SingleFlight
from tests.hand_clock import HandClock


def test_callers_of_one_key_share_its_run_and_a_kept_outcome_answers_until_it_is_too_old() -> None:
    clock, reads = HandClock(100.0), []

    async def go() -> None:
        flights: SingleFlight[str, str] = SingleFlight(keep=0.25, clock=clock)
        release = asyncio.Event()

        async def read(key: str) -> str:
            reads.append(key)
            await release.wait()
            return f"{key}#{reads.count(key)}"

        waiting = [asyncio.create_task(flights.run("job", lambda: read("job"))) for _ in range(50)]
        other = asyncio.create_task(flights.run("other", lambda: read("other")))
        await asyncio.sleep(0.01)
        assert "job" in flights and len(flights) == 2
        release.set()
        assert set(await asyncio.gather(*waiting)) == {"job#1"} and await other == "other#1"
        assert len(flights) == 0
        clock.now += 0.2  # ended less than keep ago: its outcome answers
        assert await flights.run("job", lambda: read("job")) == "job#1" and len(reads) == 2
        clock.now += 0.05  # keep seconds after it ended: read again
        assert await flights.run("job", lambda: read("job")) == "job#2"

    asyncio.run(go())


def test_an_error_is_every_waiting_callers_and_kept_like_a_value() -> None:
    clock, reads = HandClock(100.0), []

    async def go() -> None:
        flights: SingleFlight[str, str] = SingleFlight(keep=0.25, clock=clock)

        async def gone() -> str:
            reads.append(1)
            await asyncio.sleep(0.01)
            raise NotFound("no such job")

        results = await asyncio.gather(*(flights.run("job", gone) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, NotFound) for r in results) and len(reads) == 1
        with pytest.raises(NotFound):
            await flights.run("job", gone)
        assert len(reads) == 1
        clock.now += 0.25
        with pytest.raises(NotFound):
            await flights.run("job", gone)
        assert len(reads) == 2

    asyncio.run(go())


def test_a_caller_that_leaves_never_stops_the_run_the_others_wait_for() -> None:
    async def go() -> tuple[str, int]:
        flights: SingleFlight[str, str] = SingleFlight()
        release, runs = asyncio.Event(), []

        async def read() -> str:
            runs.append(1)
            await release.wait()
            return "page"

        leaving, staying = (asyncio.create_task(flights.run("k", read)) for _ in range(2))
        await asyncio.sleep(0.01)
        leaving.cancel()
        release.set()
        return await staying, len(runs)

    assert asyncio.run(go()) == ("page", 1)
