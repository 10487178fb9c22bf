"""How deep one priority level is: pending, ack pending, redelivered, and how long its oldest ad has waited.

:class:`LevelDepth` is the one reading of a level, in NATS's own terms (``ConsumerInfo.num_pending``,
``num_ack_pending``, ``num_redelivered``; see the README's Glossary). The worker's puller (aging), the
queue sampler (``/v1/stats``, ``gamead top``) and the autoscaler all read it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg

from gamead_core import names
from gamead_core.queue.consumer_counts import consumer_counts
from gamead_core.queue.direct_read import clustered_of, fell_back, hedged

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LevelDepth:
    """One priority level (1 most urgent) at one moment."""

    level: int
    pending: int  #: never delivered (NATS ``num_pending``)
    #: delivered, not yet acknowledged (NATS ``num_ack_pending``): being analysed, or nak'ed / timed out and
    #: due back
    ack_pending: int = 0
    redelivered: int = 0  #: delivered more than once and not yet acknowledged (NATS ``num_redelivered``)
    #: seconds the oldest pending ad has waited; None when nothing is pending. In the sampler's reading
    #: (gamead_core.stats.reading) also the ads workers hold unstarted (gamead_core.stats.unstarted): None
    #: when nothing waits, though ``pending`` may be 0 while a worker holds one
    oldest_age: float | None = None
    #: Stream sequence below which every message of the level was acknowledged (or given up on); the
    #: oldest unacknowledged ads follow it. 0 when nothing was acknowledged yet.
    ack_floor: int = 0
    delivered_seq: int = 0  #: stream sequence of the last message the consumer delivered


async def peek_next(js: JetStreamContext, stream: str, subject: str, after_seq: int) -> RawStreamMsg | None:
    """The first message on ``subject`` (a level's) of ``stream`` past stream sequence ``after_seq`` (None if
    there is none), for its headers and time stamp: the queue heads' age, the ad id of an unacknowledged one.

    A direct get (``$JS.API.DIRECT.GET``, ``next_by_subj``; the work stream allows it): the reply is the
    stored message itself, its headers plus ``Nats-Time-Stamp``, with no JSON envelope and no base64 to
    decode (``STREAM.MSG.GET`` answers with both: 901 B instead of 670 B for the README's sample ad, 454 B,
    and 244 → 173 µs of client CPU; ``benchmarks/bench_head_read.py``). nats-server 2.15.1 has no way to leave
    the body out of a get (``JSApiMsgGetRequest`` offers ``seq``, ``last_by_subj``, ``next_by_subj``,
    ``batch``, ``max_bytes`` (at least one whole message is sent), ``start_time``, ``multi_last``, ``up_to_seq``,
    ``up_to_time`` and ``no_hdr``, which drops the *headers*), and a headers-only consumer would cost a consumer create per read, so the
    body is carried but never parsed. Any replica may answer a direct get (a head read is a view, not a
    decision). A stream without direct gets (an older topology) is read with ``STREAM.MSG.GET``, and so is one
    whose direct get was not answered within :data:`~gamead_core.queue.direct_read.DIRECT_HEDGE` (a replica on
    a stopped server, :mod:`~gamead_core.queue.direct_read`). Raises nats-py's errors untranslated.
    """
    try:
        return await hedged(js).get_msg(stream, seq=after_seq + 1, subject=subject, next=True, direct=True)
    except nats.js.errors.NotFoundError:
        return None
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError) as exc:
        fell_back(stream, exc, clustered=clustered_of(js._nc))
    try:
        return await js.get_msg(stream, seq=after_seq + 1, subject=subject, next=True)
    except nats.js.errors.NotFoundError:
        return None


async def level_depths(js: JetStreamContext, level: int, now: float, partitions: range) -> dict[int, LevelDepth]:
    """:func:`level_depth` of ``level`` in each of ``partitions`` (read concurrently): partition → reading, for
    the partitions that answered. A partition that cannot be read (its consumer missing, its stream leaderless)
    is left out — logged once per new error, not per read — so the level's other partitions are still pulled
    from; the counts are then those of the readable partitions. Raises the first error only when no partition
    answered (nats-py's errors untranslated, as :func:`level_depth`)."""
    read = await asyncio.gather(*(level_depth(js, level, now, p) for p in partitions), return_exceptions=True)
    got: dict[int, LevelDepth] = {}
    errors: list[BaseException] = []
    for p, one in zip(partitions, read):
        if isinstance(one, BaseException):
            if not isinstance(one, Exception):
                raise one  # CancelledError, KeyboardInterrupt: never swallowed
            errors.append(one)
            _note_unreadable(level, p, one)
        else:
            got[p] = one
            _note_unreadable(level, p, None)
    if errors and not got:
        raise errors[0]
    return got


#: (level, partition) → the last error logged for it: a partition's failure is logged when it starts or changes
#: and when it ends, not on every read (the heads are read every ``queue.head_cache_ms``). Bounded: 5 levels ×
#: at most ``names.MAX_PARTITIONS`` partitions.
_UNREADABLE: dict[tuple[int, int], str] = {}


def _note_unreadable(level: int, partition: int, exc: Exception | None) -> None:
    key = (level, partition)
    if exc is None:  # the common case, on every head read: one dict lookup, nothing built
        if key in _UNREADABLE:
            del _UNREADABLE[key]
            log.info("level %d of partition %d is readable again", level, partition,
                     extra=_fields(level, partition))
        return
    text = f"{type(exc).__name__}: {exc}"
    if _UNREADABLE.get(key) != text:
        _UNREADABLE[key] = text
        log.warning("level %d of partition %d cannot be read (%s); its other partitions are read meanwhile",
                    level, partition, text, extra=_fields(level, partition))


def _fields(level: int, partition: int) -> dict[str, object]:
    return {"priority": level, "partition": partition, "stream": names.work_stream(partition),
            "consumer": names.level_consumer(level, partition)}


async def level_depth(js: JetStreamContext, level: int, now: float, partition: int = 0) -> LevelDepth:
    """One ``consumer_info``, plus one :func:`peek_next` of the next undelivered ad when something is pending,
    of the level in work-stream ``partition`` (0: ``GAMEAD_ADS``; see :mod:`gamead_core.queue.partitions`).

    ``now`` is epoch seconds. Raises nats-py's errors untranslated (``NotFoundError`` when the level's
    consumer is missing): each caller decides what an unreadable level means to it.
    """
    # its five numbers, not nats-py's ConsumerInfo (15 µs of dataclasses less a read: .consumer_counts)
    info = await consumer_counts(js, names.work_stream(partition), names.level_consumer(level, partition))
    pending, delivered_seq = int(info.num_pending), int(info.delivered_seq)
    age: float | None = None
    if pending:
        head = await peek_next(js, names.work_stream(partition), names.level_subject(level, partition), delivered_seq)
        if head is not None and head.time is not None:
            age = max(0.0, now - head.time.timestamp())
    return LevelDepth(level, pending, int(info.num_ack_pending), int(info.num_redelivered), age,
                      int(info.ack_floor_seq), delivered_seq)
