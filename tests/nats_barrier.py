"""A connection's subscriptions known to nats-server, for certain: what ``await nc.flush()`` does not promise.

nats-py 2.16's ``flush`` writes its PING straight to the transport (``Client._send_ping``), while a ``SUB`` waits in
the connection's pending buffer for the flusher task: the PONG can come back before the server has read the SUB,
and a message another connection publishes right after is not delivered to it (core NATS: at most once). Measured
here (a subscribe, ``flush``, a publish from a second connection, 300 times on an idle-ish then loaded machine):
25 and 3 of 300 missed; with :func:`subscriptions_placed` 0 of 600. The suite's taps subscribed that way:
test_worker_writes' watcher missed the first ad's ``queued`` write (freshG of 9cf5311a: ``['completed']``;
a repro of 15 rounds here: 1). What is written to a connection (SUB, PUB) reaches the server in order, so a message
to a fresh inbox of its own, once back, proves every earlier SUB was read.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # nats-py is imported by the callers that use it, not with tests.support
    from nats.aio.client import Client as NATS


async def subscriptions_placed(nc: NATS, timeout: float = 10.0) -> None:
    """Return once nats-server has read every subscription ``nc`` sent so far: a message to a fresh inbox,
    subscribed on ``nc``, came back. Raises ``TimeoutError`` if it does not within ``timeout`` seconds."""
    inbox, back = nc.new_inbox(), asyncio.Event()

    async def arrived(_msg: object) -> None:
        back.set()

    sub = await nc.subscribe(inbox, cb=arrived)
    try:
        await nc.publish(inbox, b"")
        await asyncio.wait_for(back.wait(), timeout)
    finally:
        await sub.unsubscribe()
