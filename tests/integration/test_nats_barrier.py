"""A subscription is placed when :func:`tests.nats_barrier.subscriptions_placed` returns
(flake42; moved out of tests/ by small42: the worker's nak-advisory subscription uses it too).

Figure: with ``await nc.flush()`` in its place (what the suite's taps did), 200 rounds of connect, subscribe,
then a publish from a second connection missed 7 and 3 messages in two runs on the loaded machine (nats-py 2.16
writes flush's PING before the pending SUB); with the barrier 0 of 200 in each (same runs, alternated)."""

from __future__ import annotations

import asyncio

import nats

from gamead_core.embedded import EmbeddedNats
from tests.nats_barrier import subscriptions_placed

ROUNDS = 200


async def missed(url: str, place: object) -> int:
    """Messages a subscription missed over ``ROUNDS`` rounds of: connect, subscribe, ``place`` it (as
    :class:`tests.support.SubjectTap` does), publish from another connection, wait up to 5 s for it."""
    pub_nc = await nats.connect(url)
    lost = 0
    try:
        for i in range(ROUNDS):
            got, sub_nc = asyncio.Event(), await nats.connect(url)

            async def arrived(_msg: object, got: asyncio.Event = got) -> None:
                got.set()

            try:
                await sub_nc.subscribe(f"barrier.t.{i}", cb=arrived)
                await place(sub_nc)  # type: ignore[operator]
                await pub_nc.publish(f"barrier.t.{i}", b"x")
                try:
                    await asyncio.wait_for(got.wait(), 5)
                except asyncio.TimeoutError:
                    lost += 1
            finally:
                await sub_nc.close()
    finally:
        await pub_nc.close()
    return lost


def test_a_subscription_placed_gets_the_next_message_another_connection_publishes(
        nats_server: EmbeddedNats) -> None:
    assert asyncio.run(missed(nats_server.url, subscriptions_placed)) == 0
