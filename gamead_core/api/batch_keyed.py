"""The keyed ads of ``POST /ads/batch`` (an ``idempotencyKey``, or one derived from the ``Idempotency-Key`` header):
each goes the keyed path of ``POST /ads`` (:meth:`gamead_core.intake.Intake.submit`: a KV read, a publish, a record
create), at most :data:`AT_ONCE` at a time (review30 F5).

Why bounded: with the header every ad of a batch is keyed, and 500 submits at once put ~1,500 NATS requests in one
turn of the event loop (a ``POST /ads`` sent meanwhile waited behind all of them), and 500 publishes under one
``api.publish_timeout``. :data:`AT_ONCE` is the slice the unkeyed pipeline writes per turn
(:data:`gamead_core.queue.acks.SLICE`, 25), so a keyed batch leaves the loop as often as an unkeyed one.

:func:`keyed_bytes` is what :func:`gamead_core.api.routes_batch.check_room` adds for them: a keyed ad's record and
message are its ad plus the record's own fields and its key, more than the ad's bytes in the body.

One ad's failure is that ad's answer (review30b F8): a keyed submit raising something that is not a
:class:`GameadError` (a bug, a nats.py exception not translated) is logged with the ad's index and answered
``internal_error`` for that ad alone, while the other lanes go on; :func:`both` runs the batch's two halves so that
one raising stops the other before the request is answered (before, the other lanes went on queueing ads after the
request had been answered 500).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import orjson

from gamead_core.errors import GameadError
from gamead_core.queue.acks import SLICE

__all__ = ["AT_ONCE", "KEYED_RECORD_EXTRA", "at_most", "both", "keyed_bytes", "unexpected"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
A = TypeVar("A")
B = TypeVar("B")

#: keyed submits of one batch in flight at once: the unkeyed pipeline's slice per turn
AT_ONCE = SLICE
#: bytes a keyed ad's record holds beyond its ad's JSON and its key: id (26), status, priority, submittedAt (with
#: microseconds), attempts, the sha256 fingerprint (64) and the field names (measured: 239; rounded up;
#: tests/unit/test_batch_keyed.py checks it against a real record)
KEYED_RECORD_EXTRA = 256


def keyed_bytes(keys: Iterable[str]) -> int:
    """The bytes the records of the keyed ads with ``keys`` hold beyond their ads (each once: the record and the
    message carry the same bytes): :data:`KEYED_RECORD_EXTRA` + the key as JSON, per key. Pure."""
    return sum(KEYED_RECORD_EXTRA + len(orjson.dumps(key)) for key in keys)


def unexpected(index: int, ad_id: str) -> GameadError:
    """The answer of the keyed ad ``index`` of a batch (id ``ad_id``) whose submit raised an error that is not a
    :class:`GameadError`: ``internal_error``, ``details`` ``{index, adId}``. Its submit may be partly done (its
    message published, its record not written): it says to look the ad up, or to resend it with its key. Pure."""
    return GameadError(f"the server failed on ad {index} of this batch (logged): ad {ad_id} may be queued; GET "
                       f"/ads/{ad_id} tells, or resend it with the same key, which never queues a second one",
                       details={"index": index, "adId": ad_id})


async def at_most(items: list[T], call: Callable[[T], Awaitable[R]], failed: Callable[[T], GameadError],
                  width: int = AT_ONCE) -> list[R | GameadError]:
    """``call(item)`` for each of ``items``, at most ``width`` (≥ 1) at a time, each started as one ends; the results
    in the order of ``items``, a :class:`GameadError` raised by a call in its place, and any other exception as
    ``failed(item)``, logged with the item (review30b F8: it ended the batch with a 500 while the other lanes went
    on queueing). A cancellation still ends every lane."""
    results: list[Any] = [None] * len(items)
    pending = iter(enumerate(items))

    async def lane() -> None:
        for i, item in pending:  # the lanes share the iterator: each takes the next item as it ends one
            try:
                results[i] = await call(item)
            except GameadError as exc:
                results[i] = exc
            except Exception:  # not a cancellation (BaseException): the others go on, this item has its answer
                log.exception("item %s of a batch failed unexpectedly; answered internal_error", item)
                results[i] = failed(item)

    await asyncio.gather(*(lane() for _ in range(min(width, len(items)))))
    return results


async def both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """``first`` and ``second`` run at once, their results. When one raises, the other is cancelled and waited for
    before that exception is raised as it was (not as an exception group): nothing of a batch is still queueing
    when its request is answered (review30b F8)."""
    try:
        async with asyncio.TaskGroup() as group:
            one, two = group.create_task(first), group.create_task(second)  # type: ignore[arg-type]
    except BaseExceptionGroup as grouped:
        error = grouped.exceptions[0]  # the first raised; the others after the cancellation it caused
    else:
        return one.result(), two.result()
    raise error
