"""A connection's subscriptions known to nats-server, for certain: what ``await nc.flush()`` does not promise.

nats-py 2.16's ``flush`` writes its PING straight to the transport (``Client._send_ping``), while a ``SUB`` waits in
the connection's pending buffer for the flusher task: the PONG can come back before the server has read the SUB,
so a message another connection publishes right after is not delivered to it (core NATS: at most once), and the
server's refusal of it (``-ERR 'Permissions Violation for Subscription …'``) comes after the PONG. Measured (flake42:
a subscribe, ``flush``, a publish from a second connection, 300 times on an idle-ish then loaded machine): 25 and 3
of 300 missed; with :func:`subscriptions_placed` 0 of 600. What is written to a connection (SUB, PUB) reaches the
server in order, and what the server sends back (``-ERR``, ``MSG``) is read in order: a message to a fresh inbox
of its own, once back, proves every earlier SUB was read and its refusal, if any, already taken by the read loop
(``nc.last_error``). Unlike ``flush(timeout)`` it cannot wedge the client (:mod:`gamead_core.queue.liveness`): a
late message to an inbox no longer subscribed is dropped.
"""

from __future__ import annotations

import asyncio

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from gamead_core.queue.inline_sub import subscribe_inline
from gamead_core.queue.read_end import unsubscribe_quietly

__all__ = ["subscriptions_placed"]


async def subscriptions_placed(nc: NATS, timeout: float = 10.0) -> None:
    """Return once nats-server has read every subscription ``nc`` sent so far (and ``nc``'s read loop has taken
    any ``-ERR`` it answered them with): a message to a fresh inbox, subscribed on ``nc``, came back. ``timeout``:
    seconds. Raises ``TimeoutError`` if it does not come back within ``timeout``, and what ``nc.subscribe`` and
    ``nc.publish`` raise (a closed connection)."""
    back: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def arrived(_msg: Msg) -> None:
        if not back.done():
            back.set_result(None)

    sub = await subscribe_inline(nc, nc.new_inbox(), arrived)
    try:
        await nc.publish(sub.subject, b"")
        await asyncio.wait_for(back, timeout)
    finally:
        await unsubscribe_quietly(sub)
