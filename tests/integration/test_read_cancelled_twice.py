"""A read cancelled at its start or again at its end leaves no consumer on nats-server (attack39c F2, left40:
:mod:`gamead_core.queue.read_end`).

A read's consumer is made by a JetStream request; a reader cancelled while that request awaits its answer (a client
gone, a timeout, a shutdown) never learnt the consumer's name, and nats-server kept it until its
``inactive_threshold`` (120 s). The test holds the creation's answer at a proxy (:class:`tests.nats_filter.
PublishFilter`, the delivery after the answers of the read's ``stream_info`` and of its look for a first message)
until nats-server has made the consumer, so the cancel lands there on every run; then it cancels the reader a second
time one loop turn later, as a shutdown over a client disconnect's cancel does, and lets the answer go.

Figure without the fix (``pull_feed`` awaited unshielded, as before): ``consumer_count`` 1 for the whole 10 s wait,
for both readers here (read_stream, read_in_order; the snapshot, doctor and audit reads start through the same
``read_end.opened``); loosely, 200 reads cancelled
0.05 s after they began left 186 consumers 3 s later (/tmp/left40-leak2.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

import nats
import pytest
from nats.js import JetStreamContext

from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.in_order import read_in_order
from gamead_core.queue.scan import read_stream
from tests.nats_filter import PublishFilter
from tests.streams import filled_stream
from tests.waits import until


async def _in_order(js: JetStreamContext) -> AsyncIterator[object]:
    async with aclosing(read_in_order(js, "TWICE", "twice.>", await js.stream_info("TWICE"))) as msgs:
        async for msg in msgs:
            yield msg


READERS: dict[str, Callable[[JetStreamContext], AsyncIterator[object]]] = {
    "read_stream": lambda js: read_stream(js, "TWICE", "twice.>", timeout=5),
    "read_in_order": _in_order,
}


async def _consumers_left(server: EmbeddedNats, proxy: PublishFilter, reader: str) -> int:
    direct = await nats.connect(server.url)
    nc = await nats.connect(proxy.url)
    try:
        djs = direct.jetstream(timeout=10)
        await filled_stream(djs, "TWICE", [100] * 20)
        js = nc.jetstream(timeout=10)
        # the answers of stream_info and of the look for a first message (scan.none_to_read) go, the creation's is held
        proxy.stall_deliveries(2, None, "_INBOX.")

        async def read() -> None:
            async with aclosing(READERS[reader](js)) as msgs:
                async for _ in msgs:
                    pass

        task = asyncio.create_task(read())
        async def held() -> bool:
            return bool((await djs.stream_info("TWICE")).state.consumer_count and proxy.holds)

        # made, and its answer held at the proxy (nats-server counts the consumer before that answer reaches the
        # proxy: a fresh clone's run saw consumer_count 1 with holds still 0)
        await until(held, timeout=10, what="the read's consumer, its answer held at the proxy")
        assert proxy.holds == 1 and not task.done()
        task.cancel()
        await asyncio.sleep(0)
        task.cancel()
        proxy.release()
        await asyncio.gather(task, return_exceptions=True)
        deadline = time.monotonic() + 10  # well under the 120 s after which nats-server removes it itself
        while (left := (await djs.stream_info("TWICE")).state.consumer_count) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return left
    finally:
        await nc.close()
        await direct.close()


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_read_cancelled_while_its_consumer_is_made_leaves_none(  # type: ignore[no-untyped-def]
        fresh_nats, links, reader) -> None:
    """A reader cancelled (twice) while its consumer's creation awaits the answer: no consumer 10 s later."""
    server: EmbeddedNats = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(proxy)
    assert asyncio.run(_consumers_left(server, proxy, reader)) == 0
