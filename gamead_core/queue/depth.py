"""How deep one priority level is: pending, ack pending, redelivered, and how long its oldest ad has waited.

:class:`LevelDepth` is the one reading of a level, in NATS's own terms (``ConsumerInfo.num_pending``,
``num_ack_pending``, ``num_redelivered``; see the README's Glossary). The worker's puller (aging), the
queue sampler (``/v1/stats``, ``gamead top``) and the autoscaler all read it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import nats.js.errors
from nats.js import JetStreamContext

from gamead_core import names


@dataclass(frozen=True, slots=True)
class LevelDepth:
    """One priority level (1 most urgent) at one moment."""

    level: int
    pending: int  #: never delivered (NATS ``num_pending``)
    #: delivered, not yet acknowledged (NATS ``num_ack_pending``): being analysed, or nak'ed / timed out and
    #: due back
    ack_pending: int = 0
    redelivered: int = 0  #: delivered more than once and not yet acknowledged (NATS ``num_redelivered``)
    oldest_age: float | None = None  #: seconds the oldest pending ad has waited; None when nothing is pending
    #: Stream sequence below which every message of the level was acknowledged (or given up on); the
    #: oldest unacknowledged ads follow it. 0 when nothing was acknowledged yet.
    ack_floor: int = 0
    delivered_seq: int = 0  #: stream sequence of the last message the consumer delivered


async def level_depths(js: JetStreamContext, level: int, now: float, partitions: range) -> dict[int, LevelDepth]:
    """:func:`level_depth` of ``level`` in each of ``partitions`` (read concurrently): partition → reading.
    Raises the first error met, as :func:`level_depth` does."""
    read = await asyncio.gather(*(level_depth(js, level, now, p) for p in partitions), return_exceptions=True)
    for got in read:
        if isinstance(got, BaseException):
            raise got
    return dict(zip(partitions, read))  # type: ignore[arg-type]


async def level_depth(js: JetStreamContext, level: int, now: float, partition: int = 0) -> LevelDepth:
    """One ``consumer_info``, plus one ``get_msg`` of the next undelivered ad when something is pending, of the
    level in work-stream ``partition`` (0: ``GAMEAD_ADS``; see :mod:`gamead_core.queue.partitions`).

    ``now`` is epoch seconds. Raises nats-py's errors untranslated (``NotFoundError`` when the level's
    consumer is missing): each caller decides what an unreadable level means to it.
    """
    info = await js.consumer_info(names.work_stream(partition), names.level_consumer(level, partition))
    pending = int(info.num_pending or 0)
    delivered_seq = int(info.delivered.stream_seq or 0) if info.delivered else 0
    ack_floor = int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0
    age: float | None = None
    if pending:
        try:
            head = await js.get_msg(
                names.work_stream(partition),
                seq=delivered_seq + 1,
                subject=names.level_subject(level, partition),
                next=True,
            )
        except nats.js.errors.NotFoundError:
            head = None
        if head is not None and head.time is not None:
            age = max(0.0, now - head.time.timestamp())
    return LevelDepth(level, pending, int(info.num_ack_pending or 0), int(info.num_redelivered or 0), age,
                      ack_floor, delivered_seq)
