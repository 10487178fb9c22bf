"""Compare-and-set writes of ad records: JetStream's refusals told apart, "lost" from "busy", in one place that
every writer of records uses (:class:`~gamead_core.store.ads.AdStore`, :mod:`gamead_core.store.create_fence`, the
reaper's re-put through :meth:`AdStore.update_many`).

A write carrying ``Nats-Expected-Last-Subject-Sequence: N`` (ADR-8) refused is **lost** (10071, decided) or
**busy** (10164/10163: another write of the key in flight on R3, not decided): the rule, its sources and the one
function that applies it, :func:`verdict`, live in :mod:`gamead_core.queue.cas_answer` (re-exported here), which
every compare-and-set writer uses: these record writers, and through :func:`retry_busy`/:func:`create_key` the
leases, the scale override and holds, DLQ entries and operator jobs (fix35d item 1).

Before (attack33b, fix34b item 1) every writer took "busy" for "lost": the reaper's re-put answered busy published
nothing, and the ad stayed ``queued`` without a message until ``gamead doctor --repair``. Now :func:`publish_cas`
tries a busy write again, up to :data:`BUSY_TRIES` times (pauses from :data:`BUSY_PAUSE` s, doubling, at most
:data:`BUSY_PAUSE_MAX` s: about 2.3 s in all), first re-reading the key's revision from the stream leader: changed
→ the write is lost (decided, as a 10071 answer naming the revision read); still ``N`` (the write in flight not
applied, or dropped) or unreadable → sent again. A write still busy after that is left busy: its caller treats it
as unanswered (read again later: :class:`StillBusy`, a ``QueueUnavailable``), never as lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import nats.js.errors
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.queue.acks import Ack, publish_many
from gamead_core.queue.cas_answer import (
    BUSY,
    LOST,
    NOT_READY,
    WRONG_LAST_SEQUENCE,
    WRONG_LAST_SEQUENCE_CONSTANT,
    StillBusy,
    lost_at,
    still_busy,
    verdict,
)

BUSY_TRIES = 8  #: how often a busy write is sent again
BUSY_PAUSE = 0.025  #: seconds before the first re-read of a busy write's key (doubling each try)
BUSY_PAUSE_MAX = 0.5  #: the longest pause between two tries (seconds)
T = TypeVar("T")


async def last_revision(js: JetStreamContext, subject: str) -> int:
    """The records' stream sequence of the last message of ``subject`` (a record's key), read from the stream
    leader; 0 if the key has none. Raises nats-py's errors."""
    try:
        return int((await js.get_last_msg(names.ADS_BUCKET_STREAM, subject)).seq or 0)
    except nats.js.errors.NotFoundError as exc:
        if getattr(exc, "err_code", None) in (None, 10037):  # no message found: the key is empty
            return 0
        raise


def _pauses() -> Iterator[float]:
    """The pause (s) before each of the :data:`BUSY_TRIES` resends of a busy write, :func:`publish_cas`'s and
    :func:`retry_busy`'s alike: :data:`BUSY_PAUSE`, doubling, at most :data:`BUSY_PAUSE_MAX`."""
    pause = BUSY_PAUSE
    for _ in range(BUSY_TRIES):
        yield pause
        pause = min(pause * 2, BUSY_PAUSE_MAX)


def _expected(headers: dict[str, str]) -> int | None:
    value = headers.get(names.HDR_EXPECTED_LAST_SUBJECT_SEQ)
    return int(value) if value is not None else None


async def publish_cas(js: JetStreamContext, writes: Sequence[tuple[str, bytes, dict[str, str]]], *,
                      timeout: float) -> list[Ack | BaseException]:
    """:func:`~gamead_core.queue.acks.publish_many` of record writes (``(subject, payload, headers)``; a write with
    ``Nats-Expected-Last-Subject-Sequence`` is a compare-and-set), a busy one tried again as the module doc says.
    One answer per write, in order: its :class:`Ack`; a lost one's error (:func:`verdict` :data:`LOST`; one found
    lost on a re-read: :func:`lost_at`); a still busy one's 10164/10163 error; any other error as ``publish_many``
    gives it. ``timeout``: seconds each sending waits for its acks. Never raises for one write."""
    answers: list[Ack | BaseException] = list(await publish_many(js, writes, timeout=timeout))
    for pause in _pauses():
        busy = [i for i, answer in enumerate(answers) if not isinstance(answer, Ack) and verdict(answer) == BUSY]
        if not busy:
            break
        await asyncio.sleep(pause)
        reads = await asyncio.gather(*(last_revision(js, writes[i][0]) for i in busy), return_exceptions=True)
        again = []
        for i, read in zip(busy, reads, strict=True):
            if isinstance(read, asyncio.CancelledError):
                raise read
            if isinstance(read, int) and read != _expected(writes[i][2]):
                answers[i] = lost_at(read)  # the write in flight landed: this one is decided, lost
            else:
                again.append(i)  # still at its revision (in flight, or dropped), or unread: send it again
        for i, answer in zip(again, await publish_many(js, [writes[i] for i in again], timeout=timeout), strict=True):
            answers[i] = answer
    return answers


async def retry_busy(write: Callable[[], Awaitable[T]]) -> T:
    """``await write()`` (one compare-and-set through nats-py, e.g. ``kv.update(key, value, last=rev)``,
    ``kv.delete(key, last=rev)``, a ``js.publish`` with an expected last subject sequence), sent again while it
    raises a :data:`BUSY` refusal (:func:`verdict`), up to :data:`BUSY_TRIES` times with :func:`publish_cas`'s
    pauses. A lost one (decided) and every other error raised at once, as ``write`` raised it; a still busy one
    raised as :class:`StillBusy` (a ``QueueUnavailable``: not decided, read again later), chained to the last
    answer. For the compare-and-set writers of other keys than records (leases, the scale override and holds, DLQ
    entries, operator jobs): a resend of a write whose rival landed is refused 10071, lost, so no re-read is needed
    to decide."""
    for pause in (*_pauses(), None):
        try:
            return await write()
        except nats.js.errors.APIError as exc:
            if verdict(exc) != BUSY:
                raise
            if pause is None:
                raise still_busy(exc, BUSY_TRIES + 1) from exc
        await asyncio.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


async def create_key(kv: Any, key: str, value: bytes) -> int:
    """nats-py's ``kv.create(key, value)`` (write ``key`` only if it has no live value; over its delete or purge
    marker if it has one; returns the new revision), each compare-and-set through :func:`retry_busy`. nats-py's
    own ``create`` reads a busy refusal as "exists or deleted" and re-reads the key: a rival create in flight (not
    applied yet) left it ``KeyNotFoundError``. Raises ``KeyWrongLastSequenceError`` when the key has a live value
    (lost), :class:`StillBusy`, or nats-py's other errors."""
    try:
        return await retry_busy(lambda: kv.update(key, value, last=0))
    except nats.js.errors.KeyWrongLastSequenceError as lost:
        try:
            await kv.get(key)
        except nats.js.errors.KeyDeletedError as marker:
            revision = marker.entry.revision
            return await retry_busy(lambda: kv.update(key, value, last=revision))
        raise lost from None


__all__ = ["BUSY", "BUSY_TRIES", "LOST", "NOT_READY", "StillBusy", "WRONG_LAST_SEQUENCE",
           "WRONG_LAST_SEQUENCE_CONSTANT", "create_key", "last_revision", "lost_at", "publish_cas", "retry_busy",
           "still_busy", "verdict"]
