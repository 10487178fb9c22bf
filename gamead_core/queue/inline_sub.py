"""Subscriptions whose messages are handled inside nats-py's read loop, without a task hop (issue 14, perf15).

A nats-py subscription with ``cb=`` hands each message to a task of its own: the read loop puts the message on
the subscription's ``asyncio.Queue``, the task wakes in a later turn of the event loop, takes it and awaits the
callback, and only then can the callback wake whoever waits for the message (a publisher awaiting its ack, a
worker waiting for an ad). At a steady rate each message arrives alone, so every one of them pays that extra
turn. The hot subscriptions of gamead (the publish-ack replies of :mod:`gamead_core.queue.acks`, the inboxes and
long-poll bells of :mod:`gamead_core.queue.long_poll`) do O(1) work per message that never awaits: filling a
future or a queue. They are subscribed here with nats-py's public ``future=`` argument (the one-shot reply
subscription of its old-style requests), whose messages the read loop hands over at once by calling the
future's ``set_result``; :class:`Inline` stands in for that future and calls the handler instead, for every
message (never done, never cancelled).

A handler must not block or raise: an error it raises is logged and the message dropped (it would otherwise
end nats-py's read loop). Unsubscribe, drain and reconnect treat such a subscription as any other (it has no
task to stop and no pending queue to drain). nats-py's flow-control and heartbeat handling only applies to its
own JetStream subscriptions (``sub._jsi``), which these are not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

log = logging.getLogger(__name__)

__all__ = ["Inline", "subscribe_inline"]


class Inline:
    """The stand-in future of an inline subscription: nats-py's read loop calls :meth:`set_result` with each
    message, which runs ``handler(msg)`` there and then."""

    __slots__ = ("_handler",)

    def __init__(self, handler: Callable[[Msg], None]) -> None:
        self._handler = handler

    def cancelled(self) -> bool:
        """Never: every message is handled (nats-py asks before each ``set_result``)."""
        return False

    def set_result(self, msg: Msg) -> None:
        """Handle one message; an error of the handler is logged, never raised into nats-py's read loop."""
        try:
            self._handler(msg)
        except Exception:  # noqa: BLE001 - nats-py's read loop must go on
            log.exception("handling a message on %s failed; message dropped", msg.subject)


async def subscribe_inline(nc: NATS, subject: str, handler: Callable[[Msg], None]) -> Subscription:
    """Subscribe ``subject`` on ``nc`` with ``handler(msg)`` (synchronous, O(1), never raising) called inside the
    connection's read loop for every message: no task, no queue, no event-loop turn between the socket read and
    the handler. Returns nats-py's :class:`Subscription` (unsubscribe it as any other). Raises what
    ``nc.subscribe`` raises."""
    return await nc.subscribe(subject, future=Inline(handler))  # type: ignore[arg-type]
