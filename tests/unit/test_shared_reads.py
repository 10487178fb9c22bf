"""Reads many viewers repeat, done once (gamead_core.api.shared_reads), without servers. attack37 F1: 24 dashboards
each ran their own DLQ scan per refresh; identical concurrent reads were not shared, and none could be given a
recent answer."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from gamead_core.api.errors import ListBusy
from gamead_core.api.shared_reads import SharedReads, max_age_of, shared_answer
from tests.hand_clock import HandClock


def test_24_identical_concurrent_reads_run_one_read_and_a_watcher_may_take_a_recent_answer() -> None:
    """The figure: 24 identical reads at once were 24 scans; now one, and a second later one more."""
    clock, runs = HandClock(100.0), []

    async def go() -> None:
        shared, release = SharedReads("dlq", 1.0, clock=clock), asyncio.Event()

        async def read() -> bytes:
            runs.append(1)
            await release.wait()
            return b'{"items":[]}'

        waiting = [asyncio.create_task(shared.read("k", read, accept_age=1)) for _ in range(24)]
        await asyncio.sleep(0.01)
        release.set()
        assert [age for _, age in await asyncio.gather(*waiting)] == [0.0] * 24 and len(runs) == 1
        clock.now += 0.6
        assert await shared.read("k", read, accept_age=1) == (b'{"items":[]}', pytest.approx(0.6))
        assert len(runs) == 1
        assert (await shared.read("k", read, accept_age=0))[1] == 0.0 and len(runs) == 2  # an operator: fresh
        clock.now += 1.5  # past max_age: read again
        assert (await shared.read("k", read, accept_age=5))[1] == 0.0 and len(runs) == 3
        assert shared.snapshot()["joined"] == 23 and shared.snapshot()["cached"] == 1

    asyncio.run(go())


def test_a_cached_answer_is_never_said_older_than_the_age_it_was_given_for() -> None:
    """test_dlq_watchers at load 30 (a fresh clone, session 49): a watcher asking for at most 1 s got an answer said
    to be older (``ageSeconds`` > 1): the age was checked against the limit, then the clock read again for the
    answer. Here the clock moves on 0.3 s at each look (before: said 1.2 s)."""
    looks: list[float] = []

    def clock() -> float:
        looks.append(100.0 + 0.3 * len(looks))
        return looks[-1]

    async def go() -> tuple[bytes, float]:
        shared = SharedReads("dlq", 1.0, clock=clock)

        async def read() -> bytes:
            return b'{"items":[]}'

        await shared.read("k", read, accept_age=1)
        return await shared.read("k", read, accept_age=1)

    body, age = asyncio.run(go())
    assert body == b'{"items":[]}' and age <= 1.0, age


def test_a_refusal_is_every_joined_readers_and_is_not_kept() -> None:
    async def go() -> None:
        shared, calls = SharedReads("dlq", 1.0), []

        async def refused() -> bytes:
            calls.append(1)
            await asyncio.sleep(0.01)
            raise ListBusy("busy")

        results = await asyncio.gather(*(shared.read("k", refused, accept_age=1) for _ in range(3)),
                                       return_exceptions=True)
        assert all(isinstance(r, ListBusy) for r in results) and len(calls) == 1
        with pytest.raises(ListBusy):
            await shared.read("k", refused, accept_age=1)
        assert len(calls) == 2

    asyncio.run(go())


def test_the_cache_is_bounded_in_bytes() -> None:
    async def go() -> None:
        shared = SharedReads("dlq", 1.0, max_bytes=100)
        for n in range(10):
            await shared.read(n, lambda: asyncio.sleep(0, b"x" * 40), accept_age=1)
        await shared.read("big", lambda: asyncio.sleep(0, b"y" * 500), accept_age=1)  # larger than the bound: not kept
        assert shared.snapshot()["cachedBytes"] <= 100

    asyncio.run(go())


@pytest.mark.parametrize(("header", "seconds"), [(None, 0), ("max-age=1", 1), ("no-cache, max-age=5", 5),
                                                 ("max-age=abc", 0), ("s-maxage=3", 0), ("x" * 300, 0)])
def test_max_age_is_read_from_cache_control(header: str | None, seconds: int) -> None:
    assert max_age_of(header) == seconds


def test_the_answer_says_its_age() -> None:
    cached = shared_answer(b'{"items":[]}', 0.42)
    assert orjson.loads(cached.body) == {"ageSeconds": 0.42, "items": []} and cached.headers["age"] == "0"
    assert orjson.loads(shared_answer(b"{}", 0.0).body) == {"ageSeconds": 0.0}
    assert "age" not in shared_answer(b"{}", 0.0).headers


def test_the_dashboard_reads_again_a_cached_page_that_disagrees_with_the_stats() -> None:
    """A page up to a second old may predate an entry the stats already count (88 against 87): read it again at the
    next refresh, not 5 refreshes later; a fresh page (age 0) is taken as it is."""
    from gamead_cli.tui.app_refresh import stale_page
    from gamead_cli.tui.view import Snapshot

    stats = {"dlq": {"size": 88}}
    assert stale_page(Snapshot(stats=stats, dlq={"inDlq": 87, "ageSeconds": 0.4}))
    assert not stale_page(Snapshot(stats=stats, dlq={"inDlq": 87, "ageSeconds": 0.0}))
    assert not stale_page(Snapshot(stats=stats, dlq={"inDlq": 88, "ageSeconds": 0.4}))
    assert not stale_page(Snapshot(stats=stats, dlq=None))
