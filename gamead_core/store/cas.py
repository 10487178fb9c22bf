"""Compare-and-set writes of ad records: JetStream's refusals told apart, "lost" from "busy", in one place that
every writer of records uses (:class:`~gamead_core.store.ads.AdStore`, :mod:`gamead_core.store.create_fence`, the
reaper's re-put through :meth:`AdStore.update_many`).

A write carrying ``Nats-Expected-Last-Subject-Sequence: N`` (ADR-8) is refused in two different ways (nats-server
``server/jetstream_batching.go`` ``checkMsgHeadersPreClusteredProposal`` and ``server/stream.go``, read at
2.14/2.15; ``server/errors.json``):

* **lost** (:data:`LOST`): 10071 ``wrong last sequence: {seq}``: the key's last write is ``seq``, not ``N``; someone
  else changed the record. Decided: the write never lands, and a writer that publishes nothing then is right;
* **busy** (:data:`BUSY`): 10164 ``wrong last sequence`` (no number): on a replicated stream (R3) another write of
  the same key was proposed and is not applied yet ("subject already in process", since nats-server 2.11.0; 2.10
  had no such check), or 10163 ``expected last sequence per subject temporarily unavailable`` (a stream leader not
  caught up: in errors.json, answered by 2.11's pre-releases only, nats-server commits 469f834b2, 43e7a0279; kept
  for a server that sends it). Not decided: the write in flight may yet change the key, or be dropped with a
  leader change, and nobody has compared this write with it. nats-py folds both into ``KeyWrongLastSequenceError``
  (its ``kv.update``, no ``err_code``): the description tells them apart.

Before (attack33b, fix34b item 1) every writer took "busy" for "lost": the reaper's re-put answered busy published
nothing, and the ad stayed ``queued`` without a message until ``gamead doctor --repair``. Now :func:`publish_cas`
tries a busy write again, up to :data:`BUSY_TRIES` times (pauses from :data:`BUSY_PAUSE` s, doubling, at most
:data:`BUSY_PAUSE_MAX` s: about 2.3 s in all), first re-reading the key's revision from the stream leader: changed
→ the write is lost (decided, as a 10071 answer naming the revision read); still ``N`` (the write in flight not
applied, or dropped) or unreadable → sent again. A write still busy after that is left busy: its caller treats it
as unanswered (read again later), never as lost.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

import nats.js.errors
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.queue.acks import Ack, publish_many

LOST: Final = "lost"  #: someone else changed the record: the write never lands (decided)
BUSY: Final = "busy"  #: another write of the key is in flight: not decided (read again, try again)
WRONG_LAST_SEQUENCE: Final = 10071  #: "wrong last sequence: {seq}": lost
WRONG_LAST_SEQUENCE_CONSTANT: Final = 10164  #: "wrong last sequence": the key in process (nats-server >= 2.11.0)
NOT_READY: Final = 10163  #: "expected last sequence per subject temporarily unavailable" (2.11 pre-releases)
BUSY_TRIES = 8  #: how often a busy write is sent again
BUSY_PAUSE = 0.025  #: seconds before the first re-read of a busy write's key (doubling each try)
BUSY_PAUSE_MAX = 0.5  #: the longest pause between two tries (seconds)
_NUMBERED = re.compile(r"wrong last sequence: \d+")
T = TypeVar("T")


def verdict(exc: object) -> str | None:
    """:data:`LOST`, :data:`BUSY` or None (not a compare-and-set refusal) for the answer ``exc`` of a write with an
    expected last subject sequence: a nats-py ``APIError`` (its ``err_code``), or nats-py's
    ``KeyWrongLastSequenceError`` without one (its description: ``wrong last sequence: 7`` lost, ``wrong last
    sequence`` busy). Pure; the rule and its source: the module doc."""
    if not isinstance(exc, nats.js.errors.APIError):
        return None
    code = getattr(exc, "err_code", None)
    if code == WRONG_LAST_SEQUENCE:
        return LOST
    if code in (WRONG_LAST_SEQUENCE_CONSTANT, NOT_READY):
        return BUSY
    if code is None and isinstance(exc, nats.js.errors.KeyWrongLastSequenceError):
        return LOST if _NUMBERED.search(exc.description or "") else BUSY
    return None


def lost_at(seq: int) -> nats.js.errors.APIError:
    """The answer of a write found lost on a re-read (the key's last write is ``seq``), as JetStream words it."""
    return nats.js.errors.APIError(code=400, err_code=WRONG_LAST_SEQUENCE, description=f"wrong last sequence: {seq}")


async def last_revision(js: JetStreamContext, subject: str) -> int:
    """The records' stream sequence of the last message of ``subject`` (a record's key), read from the stream
    leader; 0 if the key has none. Raises nats-py's errors."""
    try:
        return int((await js.get_last_msg(names.ADS_BUCKET_STREAM, subject)).seq or 0)
    except nats.js.errors.NotFoundError as exc:
        if getattr(exc, "err_code", None) in (None, 10037):  # no message found: the key is empty
            return 0
        raise


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
    pause = BUSY_PAUSE
    for _ in range(BUSY_TRIES):
        busy = [i for i, answer in enumerate(answers) if not isinstance(answer, Ack) and verdict(answer) == BUSY]
        if not busy:
            break
        await asyncio.sleep(pause)
        pause = min(pause * 2, BUSY_PAUSE_MAX)
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
    """``await write()`` (one compare-and-set through nats-py, e.g. ``kv.update(key, value, last=rev)``), sent again
    while it raises a :data:`BUSY` refusal, up to :data:`BUSY_TRIES` times with :func:`publish_cas`'s pauses; a
    lost one (decided) and every other error raised at once, a still busy one raised after the last try. For the
    compare-and-set writers of other buckets (operator jobs): a resend of a write whose rival landed is refused
    10071, lost, so no re-read is needed to decide."""
    pause = BUSY_PAUSE
    for _ in range(BUSY_TRIES):
        try:
            return await write()
        except nats.js.errors.APIError as exc:
            if verdict(exc) != BUSY:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, BUSY_PAUSE_MAX)
    return await write()


__all__ = ["BUSY", "LOST", "last_revision", "lost_at", "publish_cas", "retry_busy", "verdict"]
