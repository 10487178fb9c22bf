"""Issue 14, steady state: a worker that a long poll hands an ad with more waiting behind it in the same level
pulls that level directly, without reading any queue head (before: 5 ``consumer_info`` requests and a direct
get per look, twice when the level ran dry: 0.36 ``consumer_info`` per ad at 500 ads/s); with a backlog in two
levels it still takes the ordered look, so the more urgent level comes first (gamead_core.queue.long_poll).

The puller runs on a real nats-server against the real topology; the work messages are published directly
(the puller reads only their metadata)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import nats

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.pull import AgingPuller
from gamead_core.queue.topology import ensure_topology
from gamead_core.worker.prefetch import PrefetchBuffer, delivery_key
from tests.support import SubjectTap


async def _drain(puller: AgingPuller, want: int, free: int, step: float) -> list[nats.aio.msg.Msg]:
    """Pull and start as the worker's loop does (:mod:`gamead_core.worker.runtime`, each ad finishing at once):
    what a pull returns is buffered, the best ``free`` by aging key start, the long polls are waited for between
    empty pulls. Returns the ads in the order they started."""
    buffer = PrefetchBuffer()
    started: list[nats.aio.msg.Msg] = []
    async with asyncio.timeout(20):
        while len(started) < want:
            seen = puller.published
            if len(buffer) >= free:
                msgs = await puller.pull(free, bar=buffer.best_key())
            else:
                msgs = await puller.pull(free - len(buffer))
            now = time.time()
            for msg in msgs:
                buffer.push(msg, delivery_key(msg, now, step))
            started.extend(buffer.pop() for _ in range(min(free, len(buffer))))
            if not msgs and not buffer:
                await puller.wait_for_work(seen, 0.5)
    for msg in started:
        await msg.ack()
    return started


def _run(server: EmbeddedNats, batches: list[tuple[int, int]], free: int,
         aging_step: float = 10.0) -> tuple[list[tuple[int, bytes]], int]:
    """Publish ``batches`` ((level, count) each, in one flush) to a quiet puller; pull them all. Returns (level,
    body) in the order they started and the ``consumer_info`` requests made meanwhile. With an ``aging_step`` under a second
    the quiet spell is older than one step when the ads come."""

    async def go() -> tuple[list[tuple[int, bytes]], int]:
        settings = GameadSettings(queue={"idle_wait": 120, "aging_step": aging_step})
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_topology(js, settings)
        puller = AgingPuller(nc, js, settings.queue)
        await puller.start()
        try:
            assert await puller.pull(free) == []  # a fresh look at an empty queue: quiet from now on
            await puller.wait_for_work(puller.published, 0)  # the long polls are placed
            await nc.flush()
            if aging_step < 1:
                await asyncio.sleep(2 * aging_step)  # the spell is older than one step (not a wait for state)
            infos = SubjectTap(server.url, f"$JS.API.CONSUMER.INFO.{names.ADS_STREAM}.>")
            try:
                pub = await nats.connect(server.url)
                pjs = pub.jetstream()
                acks = [pjs.publish(names.level_subject(level), f"{level}-{i}".encode())
                        for level, count in batches for i in range(count)]
                await asyncio.gather(*acks)
                await pub.close()
                async with asyncio.timeout(10):  # each level's long poll has handed its first ad over
                    while puller.published < len(batches):
                        await asyncio.sleep(0.01)
                got = await _drain(puller, sum(c for _, c in batches), free, aging_step)
                await nc.flush()
            finally:
                infos.close()
            return [(names.level_of_subject(m.subject), m.data) for m in got], infos.count
        finally:
            await puller.stop()
            await nc.close()

    return asyncio.run(go())


def test_a_backlog_in_one_level_is_pulled_without_reading_a_head(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    got, infos = _run(fresh_nats(), [(3, 12)], free=4)
    assert [body for _, body in got] == [f"3-{i}".encode() for i in range(12)]  # all, in publish order
    assert infos == 0  # before: 5 (one look at every level), and 5 more when a look came back empty


def test_backlogs_in_two_levels_are_pulled_most_urgent_first_without_a_head_read(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    got, infos = _run(fresh_nats(), [(5, 6), (1, 6)], free=2)
    levels = [level for level, _ in got]
    # the long polls hand one ad of each level over at once (both start); after that the urgent level drains
    # before the rest of level 5: every ad waiting arrived in the quiet spell, so level order is aging order
    assert sorted(levels[:2]) == [1, 5]
    assert levels[2:7] == [1] * 5 and levels[7:] == [5] * 5
    # no head read when both first deliveries said what waits behind them; one ordered look (5 levels) when
    # level 1's long poll answered before the rest of level 1 was stored (its level was then unwatched a moment)
    assert infos <= 5


def test_backlogs_after_a_quiet_spell_longer_than_an_aging_step_take_the_ordered_look(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    got, infos = _run(fresh_nats(), [(5, 6), (1, 6)], free=2, aging_step=0.25)
    levels = [level for level, _ in got]
    assert sorted(levels[:2]) == [1, 5] and sorted(levels) == [1] * 6 + [5] * 6
    assert infos > 0  # the heads were read: waits that long can reorder levels, and only the view knows them
