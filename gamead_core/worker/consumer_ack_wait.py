"""The ``ack_wait`` of the consumer that holds a dead worker's delivery, as the server has it.

Whether a dead worker's ads may still be handed back (:func:`gamead_core.worker.budget.nak_window_open`)
depends on when JetStream redelivers them: after the ``ack_wait`` of the level consumer that delivered them,
which need not be the recovering process's ``queue.ack_wait`` (a node configured differently: a recovery with
30 s beside consumers with 300 s left held ads waiting 300 s) nor the dead worker's own. So it is read from the
consumer (``CONSUMER.INFO``; the consumer is named in the delivery's ack subject), once per consumer per
:data:`TTL` seconds per connection (it rarely changes). Only when that read fails does a recovery fall back to
the ``ack_wait`` the dead worker announced, then its own setting, and says so in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref

import nats.errors
from nats.aio.client import Client as NATS

from gamead_core import names
from gamead_core.errors import error_text

log = logging.getLogger(__name__)

#: seconds a consumer's ``ack_wait`` read from the server is reused
TTL = 60.0

CONSUMER = "read from its consumer"
ANNOUNCED = "announced by the dead worker (its consumer could not be read)"
SETTINGS = "this process's queue.ack_wait (its consumer could not be read)"

#: per connection: (stream, consumer) → (ack_wait seconds, time.monotonic() when read)
_read: weakref.WeakKeyDictionary[NATS, dict[tuple[str, str], tuple[float, float]]] = weakref.WeakKeyDictionary()


class AckWaits:
    """The ``ack_wait`` (seconds) of the consumers one recovery meets: :meth:`of`. At most one
    ``CONSUMER.INFO`` per consumer per recovery, none while the connection's cached value is younger than
    ``max_age`` (:data:`TTL`); each read waits ``timeout`` seconds at most. Also the worker's keep-alive pacing
    (:mod:`gamead_core.worker.keepalive`)."""

    def __init__(self, nc: NATS, *, timeout: float, max_age: float = TTL) -> None:
        self._nc = nc
        self._max_age = max_age  #: a cached value older than this is read again (the keep-alive's is shorter)
        self._js = nc.jetstream(timeout=timeout)
        self._failed: set[tuple[str, str]] = set()

    async def of(self, ack_subject: str, announced: float | None, fallback: float) -> tuple[float, str]:
        """``(ack_wait seconds, where it came from)`` for the delivery replied to at ``ack_subject``: the
        consumer's (:data:`CONSUMER`), else ``announced`` (the dead worker's ``queue.ack_wait``,
        :data:`ANNOUNCED`), else ``fallback`` (this process's ``queue.ack_wait``, :data:`SETTINGS`). Never raises
        but ``CancelledError``."""
        return await self.of_consumer(names.work_ack_consumer(ack_subject), announced, fallback)

    async def of_consumer(self, key: tuple[str, str] | None, announced: float | None,
                          fallback: float) -> tuple[float, str]:
        """:meth:`of` for the consumer ``key`` = ``(stream, consumer)`` (None: not a level consumer)."""
        if key is not None and key not in self._failed:
            cache = _read.setdefault(self._nc, {})
            hit = cache.get(key)
            if hit is not None and time.monotonic() - hit[1] < self._max_age:
                return hit[0], CONSUMER
            try:
                info = await self._js.consumer_info(*key)
                value = float(info.config.ack_wait or 0)
                if value > 0:
                    cache[key] = (value, time.monotonic())
                    return value, CONSUMER
                raise ValueError("the consumer's config has no ack_wait")
            except (nats.errors.Error, asyncio.TimeoutError, ValueError) as exc:
                self._failed.add(key)
                used = f"the dead worker's announced {announced:g} s" if announced else f"queue.ack_wait {fallback:g} s"
                log.warning("could not read the ack_wait of consumer %s of stream %s (%s): judging its deliveries "
                            "with %s", key[1], key[0], error_text(exc), used)
        if announced:
            return announced, ANNOUNCED
        return fallback, SETTINGS


__all__ = ["ANNOUNCED", "CONSUMER", "SETTINGS", "TTL", "AckWaits"]
