"""The keyed ads of ``POST /ads/batch`` (an ``idempotencyKey``, or one derived from the ``Idempotency-Key`` header):
each goes the keyed path of ``POST /ads`` (:meth:`gamead_core.intake.Intake.submit`: a KV read, a publish, a record
create), at most :data:`AT_ONCE` at a time (review30 F5).

Why bounded: with the header every ad of a batch is keyed, and 500 submits at once put ~1,500 NATS requests in one
turn of the event loop (a ``POST /ads`` sent meanwhile waited behind all of them), and 500 publishes under one
``api.publish_timeout``. :data:`AT_ONCE` is the slice the unkeyed pipeline writes per turn
(:data:`gamead_core.queue.acks.SLICE`, 25), so a keyed batch leaves the loop as often as an unkeyed one.

:func:`keyed_bytes` is what :func:`gamead_core.api.routes_batch.check_room` adds for them: a keyed ad's record and
message are its ad plus the record's own fields and its key, more than the ad's bytes in the body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import orjson

from gamead_core.errors import GameadError
from gamead_core.queue.acks import SLICE

__all__ = ["AT_ONCE", "KEYED_RECORD_EXTRA", "at_most", "keyed_bytes"]

T = TypeVar("T")
R = TypeVar("R")

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


async def at_most(items: list[T], call: Callable[[T], Awaitable[R]], width: int = AT_ONCE) -> list[R | GameadError]:
    """``call(item)`` for each of ``items``, at most ``width`` (≥ 1) at a time, each started as one ends; the results
    in the order of ``items``, a :class:`GameadError` raised by a call in its place (other exceptions propagate)."""
    results: list[Any] = [None] * len(items)
    pending = iter(enumerate(items))

    async def lane() -> None:
        for i, item in pending:  # the lanes share the iterator: each takes the next item as it ends one
            try:
                results[i] = await call(item)
            except GameadError as exc:
                results[i] = exc

    await asyncio.gather(*(lane() for _ in range(min(width, len(items)))))
    return results
