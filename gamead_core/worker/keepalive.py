"""The ack-wait keep-alive: while the worker holds an ad, tell JetStream so it is not redelivered under it.

JetStream redelivers a message not acknowledged within the consumer's ``ack_wait``; an "in progress" ack
(``+WPI``, nats-server's ``AckProgress``) resets that timer. This hook sends one every ``ack_wait / 3`` seconds
(at least 0.5 s) from pull to settlement, also for an ad in the worker's prefetch buffer
(:mod:`gamead_core.worker.prefetch`; :meth:`AckWaitKeepAlive.hold`). This is the *ack-wait extension*, not
the autoscaler's leader lease.
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.msg import Msg

from gamead_core.worker.hooks import Delivery, Hook
from gamead_core.worker.timers import Deadlines

log = logging.getLogger(__name__)


def keepalive_period(ack_wait: float) -> float:
    """Seconds between two in-progress acks for a consumer with ``ack_wait`` seconds: a third of it, ≥ 0.5 s."""
    return max(0.5, ack_wait / 3)


class AckWaitKeepAlive(Hook):
    """Extends the ack wait of every held delivery until it ends (``queue.ack_wait``). One timer for all held
    deliveries (:class:`~gamead_core.worker.timers.Deadlines`: they share the period), not a task or a timer
    handle each: most deliveries end before their first in-progress ack."""

    def __init__(self, ack_wait: float) -> None:
        self.period = keepalive_period(ack_wait)
        #: (stream, stream seq) → its next in-progress ack: a sequence alone repeats across work-stream partitions
        self._timers = Deadlines(self.period)
        self._sending: set[asyncio.Future[None]] = set()  #: in-progress acks on their way (kept referenced)

    async def before_delivery(self, delivery: Delivery) -> None:
        key = (delivery.msg.metadata.stream, delivery.seq)
        if key not in self._timers:  # held since the pull (prefetch): its deadline runs on, one per delivery
            self._timers.add(key, self._tick, key, delivery.msg)

    async def after_delivery(self, delivery: Delivery) -> None:
        self._timers.remove((delivery.msg.metadata.stream, delivery.seq))

    def hold(self, msg: Msg) -> None:
        """Keep ``msg`` alive before its delivery starts (a prefetched ad); its delivery takes the timer over.
        A timer of an earlier delivery of the same message is replaced (it must not tick on beside it)."""
        key = (msg.metadata.stream, msg.metadata.sequence.stream)
        self._timers.add(key, self._tick, key, msg)

    def release(self, msg: Msg) -> None:
        """Stop keeping ``msg`` alive (a prefetched ad handed back without starting)."""
        self._timers.remove((msg.metadata.stream, msg.metadata.sequence.stream))

    def _tick(self, seq: tuple[str, int], msg: Msg) -> None:
        sending = asyncio.ensure_future(self._progress(msg))
        self._sending.add(sending)
        sending.add_done_callback(self._sending.discard)
        self._timers.add(seq, self._tick, seq, msg)

    @staticmethod
    async def _progress(msg: Msg) -> None:
        try:
            await msg.in_progress()
        except Exception as exc:  # noqa: BLE001 - best effort; redelivery is the fallback
            log.debug("in_progress failed: %r", exc)
