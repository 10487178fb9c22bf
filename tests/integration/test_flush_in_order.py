"""A gamead NATS client's ``flush()`` is answered after nats-server has read what was written before it (flakes51B).

nats-py 2.16 writes a flush's ``PING`` to the socket ahead of the publishes, subscriptions and ``UNSUB`` waiting in
its buffer; its own ``Subscription.drain`` (``UNSUB``, then ``flush()``: a worker's stop hands back what its long
polls got before the server took the ``UNSUB``) relied on the order. Every client of
:func:`gamead_core.queue.connection.connect` flushes in order (:func:`gamead_core.queue.flush_all.flush_in_order`).
Here a proxy holds the client's publish 2 s on its way, and what it writes after: the flush waits for it. Real
nats-server. Before (nats-py's flush): answered at once, the watcher had nothing (``[]``); after: ``[b'one']``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats

from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.connection import connect
from gamead_core.queue.flush_all import flush_all
from gamead_core.shutdown import close_connection
from tests.nats_filter import PublishFilter

SUBJECT = "flakes51b.in.order"


def test_a_flush_after_a_publish_held_on_its_way_is_answered_after_it(
    fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter],
) -> None:
    server = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(proxy)
    proxy.hold(SUBJECT, 2.0)

    async def main() -> list[bytes]:
        nc = await connect(GameadSettings().nats, proxy.url, name="in-order")
        watcher = await nats.connect(server.url)
        got: list[bytes] = []
        try:
            async def note(msg: nats.aio.msg.Msg) -> None:
                got.append(msg.data)

            await watcher.subscribe(SUBJECT, cb=note)
            await flush_all(watcher)
            await nc.publish(SUBJECT, b"one")
            await nc.flush()  # as nats-py's own drains call it
            await watcher.flush()  # what the server sent the watcher before is in
            return got
        finally:
            await close_connection(nc, drain_timeout=0)
            await watcher.close()

    assert asyncio.run(main()) == [b"one"]
