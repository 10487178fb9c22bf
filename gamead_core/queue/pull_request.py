"""One JetStream pull request (ADR-13) on one level consumer, and its answer, for the
:class:`~gamead_core.queue.pull.AgingPuller`.

A ``no_wait`` request is answered at once: the messages there are (up to ``batch``), then a status message
ends it. A status is judged by the rule whole-stream reads use (:func:`gamead_core.queue.pull_status.verdict`): a
request's normal end (404 no messages, 408 expired, 409 Leadership Change / Server Shutdown / Batch Completed) is
an answer; anything else (409 Consumer Deleted, 503 no responders…) is the level's failure, reported to its
:class:`~gamead_core.queue.level_health.LevelHealth`.
Answers land in the consumer's inbox queue, which may also hold late answers of an earlier request: each request
has its own reply subject under the inbox (``<inbox>.<n>``, the inbox subscribed as ``<inbox>.*``), so a late
status of an earlier one (unanswered past :data:`PULL_TIMEOUT`) does not end the next one (poll54; a delivery, which
carries its message's own subject, is taken by whichever request reads it: it is an ad for this worker either way).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.queue import pull_status
from gamead_core.queue.level_health import LevelHealth

log = logging.getLogger(__name__)
_STATUS = names.HDR_STATUS
#: seconds a ``no_wait`` request may go unanswered before its level counts as failing
PULL_TIMEOUT = 1.0
_ASKED = itertools.count(1)  #: numbers the requests' reply subjects (``<inbox>.<n>``)


def is_status(msg: Msg) -> bool:
    """True for a pull request's status answer (404, 408, 409, 503…), False for a delivered message."""
    return bool(msg.headers and msg.headers.get(_STATUS))


def take_delivered(queue: asyncio.Queue[Msg], want: int, into: list[Msg]) -> None:
    """Move messages already in ``queue`` into ``into`` (skipping status answers) until it holds ``want``."""
    while len(into) < want and not queue.empty():
        msg = queue.get_nowait()
        if not is_status(msg):
            into.append(msg)


async def pull_no_wait(nc: NATS, queue: asyncio.Queue[Msg], reply: str, *, level: int, partition: int,
                       want: int, health: LevelHealth) -> list[Msg]:
    """Up to ``want`` messages of ``level``'s consumer in work-stream ``partition``: first those already in
    ``queue`` (the inbox subscribed as ``<reply>.*``), then one ``no_wait`` request for the rest, waiting at most
    :data:`PULL_TIMEOUT` s for its answer. Marks the level ok or failing in ``health``; an unreadable level
    is not asked. Raises nats-py's errors of the publish untranslated."""
    got: list[Msg] = []
    take_delivered(queue, want, got)
    if len(got) == want or not health.readable(level):
        return got
    consumer, asked = names.level_consumer(level, partition), f"{reply}.{next(_ASKED)}"
    await nc.publish(names.pull_next_subject(names.work_stream(partition), consumer),
                     orjson.dumps({"batch": want - len(got), "no_wait": True}), reply=asked)
    try:  # one timer for the whole answer (cpu60: not wait_for's task, waiter and timer per message waited for)
        async with asyncio.timeout(PULL_TIMEOUT):
            while len(got) < want:
                msg = queue.get_nowait() if not queue.empty() else await queue.get()  # a cancel leaves it queued
                status = msg.headers.get(_STATUS) if msg.headers else None
                if status and msg.subject != asked:  # the late end of an earlier request: not this one's
                    continue
                if status:
                    _ended(health, level, consumer, status, msg)
                    break
                got.append(msg)
    except TimeoutError:
        if not got:
            health.failed(level, "its pull request was not answered", in_pull=True)
    if got:
        health.ok(level, by_pull=True)
    return got


def _ended(health: LevelHealth, level: int, consumer: str, status: str, msg: Msg) -> None:
    """A pull request's end, status ``status`` (``msg``), judged by :func:`pull_status.verdict`: a request's
    normal end (:data:`pull_status.OVER`) is an answer, the rest the level's failure. Before (session 60) every
    ``409`` was a failure: a ``409 Leadership Change`` in a cluster set the level aside with back-off."""
    description = (msg.headers.get("Description", "") if msg.headers else "") or ""
    if pull_status.verdict(status, description, None, 1) == pull_status.OVER:
        health.ok(level, by_pull=True)
        return
    if status == "503":
        description = f"consumer {consumer} does not answer (missing?)"
    health.failed(level, f"pull answered {status} {description or 'refused'}", in_pull=True)


def pending_behind(msgs: list[Msg]) -> int:
    """How many new ads wait behind ``msgs`` (deliveries of one level) at their consumers: for each work-stream
    partition among them, ``num_pending`` of its latest delivery (highest consumer sequence; the count JetStream
    puts in each delivery's ack subject, ADR-15), summed. Never fewer than waited when they were delivered: an ad
    that a long poll brought before a head read is in ``msgs`` but was not in that read's count, so subtracting
    ``len(msgs)`` from the read could say a level is empty while an ad still waits in it. 0 for no deliveries."""
    latest: dict[str, tuple[int, int]] = {}  # stream → (consumer sequence, num_pending)
    for msg in msgs:
        try:
            meta = msg.metadata
            seen = (meta.sequence.consumer, meta.num_pending or 0)
        except (ValueError, IndexError, AttributeError):  # not a JetStream delivery
            continue
        if seen > latest.get(meta.stream, (-1, 0)):
            latest[meta.stream] = seen
    return sum(pending for _, pending in latest.values())


def next_head_age(head_age: float, read_at: float, taken: list[Msg]) -> float:
    """The wait, as of ``read_at`` (epoch s, when the level's head was read), of a level's next new ad once
    ``taken`` were pulled from it: at most that of the last first delivery taken (a level's new ads come in
    publish order), so a level does not look more patient than the ads just pulled from it. ``head_age`` when
    ``taken`` holds no first delivery."""
    for msg in reversed(taken):
        meta = msg.metadata
        if (meta.num_delivered or 1) == 1 and meta.timestamp is not None:
            return min(head_age, max(0.0, read_at - meta.timestamp.timestamp()))
    return head_age


async def nak_now(msgs: list[Msg], shield: Callable[[Awaitable[Any]], Awaitable[Any]] | None = None) -> int:
    """``nak`` each of ``msgs`` without delay (redelivered at once), concurrently; each through ``shield`` when
    given (the worker's :class:`~gamead_core.worker.shield.Shield`: a shutdown cannot cut it off). Returns how
    many naks were sent; one that fails is logged at debug level (JetStream redelivers that message after
    ``ack_wait`` instead). Never raises but ``CancelledError``."""
    if not msgs:
        return 0
    results = await asyncio.gather(*((shield(m.nak()) if shield else m.nak()) for m in msgs), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            log.debug("nak failed (redelivered after ack_wait): %r", result)
    return sum(1 for r in results if not isinstance(r, BaseException))
