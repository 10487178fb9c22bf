"""The ack-wait keep-alive: while the worker holds an ad, tell JetStream so it is not redelivered under it.

JetStream redelivers a message not acknowledged within the consumer's ``ack_wait``; an "in progress" ack
(``+WPI``, nats-server's ``AckProgress``) resets that timer. This hook sends one every ``ack_wait / 3`` seconds
(at least 0.5 s) from pull to settlement. This is the *ack-wait extension*, not the autoscaler's leader lease.
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.msg import Msg

from gamead_core.worker.hooks import Delivery, Hook

log = logging.getLogger(__name__)


def keepalive_period(ack_wait: float) -> float:
    """Seconds between two in-progress acks for a consumer with ``ack_wait`` seconds: a third of it, ≥ 0.5 s."""
    return max(0.5, ack_wait / 3)


class AckWaitKeepAlive(Hook):
    """Extends the ack wait of every held delivery until it ends (``queue.ack_wait``)."""

    def __init__(self, ack_wait: float) -> None:
        self.period = keepalive_period(ack_wait)
        self._tasks: dict[int, asyncio.Task[None]] = {}

    async def before_delivery(self, delivery: Delivery) -> None:
        self._tasks[delivery.seq] = asyncio.create_task(self._keep(delivery.msg))

    async def after_delivery(self, delivery: Delivery) -> None:
        task = self._tasks.pop(delivery.seq, None)
        if task is not None:
            task.cancel()

    async def _keep(self, msg: Msg) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await msg.in_progress()
            except Exception as exc:  # noqa: BLE001 - best effort; redelivery is the fallback
                log.debug("in_progress failed: %r", exc)
