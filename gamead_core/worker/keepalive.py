"""The ack-wait keep-alive: while the worker holds an ad, tell JetStream so it is not redelivered under it.

JetStream redelivers a message not acknowledged within the consumer's ``ack_wait``; an "in progress" ack
(``+WPI``, nats-server's ``AckProgress``) resets that timer. This hook sends one every ``ack_wait / 3`` seconds
(at least 0.5 s) from pull to settlement, also for an ad in the worker's prefetch buffer
(:mod:`gamead_core.worker.prefetch`; :meth:`AckWaitKeepAlive.hold`). This is the *ack-wait extension*, not
the autoscaler's leader lease.

The period follows the ``ack_wait`` JetStream really has, not this worker's ``queue.ack_wait`` (attack31c F3:
consumers lowered to 4 s under workers renewing every 5 s got their long analyses redelivered and run twice):
the live value the start left on the level consumers (:meth:`AckWaitKeepAlive.seed`, from the start's topology
report), then the ``ack_wait`` of each level consumer it holds deliveries of, read from the server
(:class:`~gamead_core.worker.consumer_ack_wait.AckWaits`), at most once per :data:`REREAD` seconds per consumer;
the period is a third of the smallest of those (:attr:`AckWaitKeepAlive.ack_wait`, its own only until it knows
one). That one value is also what the worker's settler judges a stopped renewal by and what its heartbeat
announces (fix32lim: a worker started with a shorter ``queue.ack_wait`` than the fleet's judged the other workers'
ads lost too early and announced a renewal pace the reaper then misjudged). When the period shrinks, the pending
renewals are brought forward at once (:meth:`Deadlines.shorten`), and the worker says so (WARNING).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.worker.consumer_ack_wait import CONSUMER, AckWaits
from gamead_core.worker.hooks import Delivery, Hook
from gamead_core.worker.timers import Deadlines

log = logging.getLogger(__name__)

#: seconds between two reads of one level consumer's live ``ack_wait`` by a worker that holds its deliveries
REREAD = 10.0


def keepalive_period(ack_wait: float) -> float:
    """Seconds between two in-progress acks for a consumer with ``ack_wait`` seconds: a third of it, ≥ 0.5 s."""
    return max(0.5, ack_wait / 3)


class AckWaitKeepAlive(Hook):
    """Extends the ack wait of every held delivery until it ends (``queue.ack_wait``). One timer for all held
    deliveries (:class:`~gamead_core.worker.timers.Deadlines`: they share the period), not a task or a timer
    handle each: most deliveries end before their first in-progress ack."""

    def __init__(self, ack_wait: float, *, timeout: float = 5.0, reread: float = REREAD) -> None:
        self.own = ack_wait  #: this worker's ``queue.ack_wait``
        self.period = keepalive_period(ack_wait)
        self._timeout, self._reread = timeout, reread  #: seconds: a read's bound, between two reads of a consumer
        self._live: dict[tuple[str, str], float] = {}  #: (stream, consumer) → its ``ack_wait`` as last read
        self._read_at: dict[tuple[str, str], float] = {}  #: … → time.monotonic() of its last read (or attempt)
        #: (stream, stream seq) → its next in-progress ack: a sequence alone repeats across work-stream partitions
        self._timers = Deadlines(self.period)
        self._sending: set[asyncio.Future[None]] = set()  #: in-progress acks on their way (kept referenced)

    @property
    def ack_wait(self) -> float:
        """Seconds: the level consumers' live ``ack_wait``, the smallest of those seeded or read (this worker's own
        ``queue.ack_wait`` until it knows one). The one source of the renewal pace, of the settler's judgement of
        when a delivery nobody renews is redelivered, and of the heartbeat's ``ackWait``."""
        return min(self._live.values()) if self._live else self.own

    def seed(self, live: Mapping[tuple[str, str], float]) -> None:
        """Take the level consumers' live ``ack_wait`` (``(stream, consumer)`` → seconds) the start found, e.g. one
        it kept above this worker's own (:mod:`gamead_core.queue.limit_rule`), and pace by it from now on."""
        self._live.update({k: v for k, v in live.items() if v > 0})
        self.pace(self.ack_wait)

    async def before_delivery(self, delivery: Delivery) -> None:
        self._look(delivery.msg)
        key = (delivery.msg.metadata.stream, delivery.seq)
        if key not in self._timers:  # held since the pull (prefetch): its deadline runs on, one per delivery
            self._timers.add(key, self._tick, key, delivery.msg)

    async def after_delivery(self, delivery: Delivery) -> None:
        self._timers.remove((delivery.msg.metadata.stream, delivery.seq))

    def hold(self, msg: Msg) -> None:
        """Keep ``msg`` alive before its delivery starts (a prefetched ad); its delivery takes the timer over.
        A timer of an earlier delivery of the same message is replaced (it must not tick on beside it)."""
        self._look(msg)
        key = (msg.metadata.stream, msg.metadata.sequence.stream)
        self._timers.add(key, self._tick, key, msg)

    def release(self, msg: Msg) -> None:
        """Stop keeping ``msg`` alive (a prefetched ad handed back without starting)."""
        self._timers.remove((msg.metadata.stream, msg.metadata.sequence.stream))

    def _look(self, msg: Msg) -> None:
        """Read the live ``ack_wait`` of ``msg``'s level consumer if it was not read in the last :data:`REREAD`
        seconds (in the background: a delivery never waits for it)."""
        try:  # nats-py's parse of the reply subject, cached on the message: this runs twice per ad
            meta = msg.metadata
        except Exception:  # noqa: BLE001 - not a JetStream delivery: nothing to read
            return
        now, seen = time.monotonic(), (meta.stream, meta.consumer)
        if now - self._read_at.get(seen, -self._reread) < self._reread:
            return
        self._read_at[seen] = now  # the full check of the subject below: once per REREAD s and consumer
        key = names.work_ack_consumer(getattr(msg, "reply", None) or "")
        nc = getattr(msg, "_client", None)
        if key is None or nc is None:
            return
        reading = asyncio.ensure_future(self._read(nc, key))
        self._sending.add(reading)
        reading.add_done_callback(self._sending.discard)

    async def _read(self, nc: object, key: tuple[str, str]) -> None:
        reader = AckWaits(nc, timeout=self._timeout, max_age=self._reread)  # type: ignore[arg-type]
        value, source = await reader.of_consumer(key, None, self.own)
        if source == CONSUMER:
            self._live[key] = value
        self.pace(self.ack_wait)

    def pace(self, ack_wait: float) -> None:
        """Renew every :func:`keepalive_period` of ``ack_wait`` (seconds) from now on; renewals due later are
        brought forward. Said once per change: a WARNING while the consumers' live ``ack_wait`` is below this
        worker's own."""
        period = keepalive_period(ack_wait)
        if period == self.period:
            return
        extra = {"ack_wait": ack_wait, "own_ack_wait": self.own, "period": period}
        if ack_wait < self.own:
            log.warning("the level consumers' live ack_wait is %g s, below this worker's queue.ack_wait %g s: "
                        "in-progress acks every %g s (README: Topology)", ack_wait, self.own, period, extra=extra)
        elif ack_wait > self.own:
            log.info("the level consumers' live ack_wait is %g s, above this worker's queue.ack_wait %g s: "
                     "in-progress acks every %g s, deliveries judged by %g s (README: Topology)", ack_wait, self.own,
                     period, ack_wait, extra=extra)
        else:
            log.info("in-progress acks every %g s again (queue.ack_wait %g s)", period, self.own)
        self.period = period
        self._timers.shorten(period)

    def _tick(self, seq: tuple[str, int], msg: Msg) -> None:
        self._look(msg)
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
