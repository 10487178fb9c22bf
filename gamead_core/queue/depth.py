"""How deep one priority level is: waiting, in flight, redelivered, and how long its oldest ad has waited.

One reading shared by the worker's puller (aging), the autoscaler (backlog) and ``/v1/stats``.
"""

from __future__ import annotations

from dataclasses import dataclass

import nats.js.errors
from nats.js import JetStreamContext

from gamead_core import names


@dataclass(frozen=True, slots=True)
class LevelDepth:
    level: int
    waiting: int  #: never delivered
    in_flight: int  #: delivered, not yet acknowledged (including nak'ed ads waiting to come back)
    redelivered: int
    oldest_age: float | None  #: seconds the oldest waiting ad has waited; None when nothing waits
    #: Stream sequence below which every message of the level was acknowledged (or given up on); the
    #: oldest unacknowledged ads follow it. 0 when nothing was acknowledged yet.
    ack_floor: int = 0
    delivered_seq: int = 0  #: stream sequence of the last message the consumer delivered


async def level_depth(js: JetStreamContext, level: int, now: float) -> LevelDepth:
    """One ``consumer_info``, plus one ``get_msg`` of the next undelivered ad when something waits."""
    info = await js.consumer_info(names.ADS_STREAM, names.level_consumer(level))
    waiting = int(info.num_pending or 0)
    delivered_seq = int(info.delivered.stream_seq or 0) if info.delivered else 0
    ack_floor = int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0
    age: float | None = None
    if waiting:
        try:
            head = await js.get_msg(
                names.ADS_STREAM,
                seq=delivered_seq + 1,
                subject=names.level_subject(level),
                next=True,
            )
            if head.time is not None:
                age = max(0.0, now - head.time.timestamp())
        except nats.js.errors.NotFoundError:
            pass
    return LevelDepth(level, waiting, int(info.num_ack_pending or 0), int(info.num_redelivered or 0), age,
                      ack_floor, delivered_seq)
