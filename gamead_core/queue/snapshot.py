"""A KV bucket's keys from a sequence on, as of one sequence, each read once: the whole-bucket read of ``GET /ads``
and ``GET /v1/jobs`` (attack35 F1).

Why not a snapshot on the server alone: a gamead bucket keeps one revision per key, so a key rewritten after a
sequence S has no revision at or before S left, and a direct get ``multi_last`` with ``up_to_seq`` S (ADR-31)
leaves such a key out (nats-server 2.15.1: keys k0-k999 written at sequences 1-1,000, k0 rewritten at 1,001,
``up_to_seq`` 5 answered k1-k4, without k0); and ``multi_last`` answers ``413`` past 1,024 subjects. Before,
the read took every record message in stream order and went on past its end while records were rewritten ahead
of it (``follow``): a bucket written faster than records were read and decoded (~6-9k writes/s during a storm of
2,900 ads/s) made it give up, 503 ``scan_incomplete`` in 2 of ~5 runs.

So the read is in two steps, and only the first has to keep up with the writers:

1. **The keys**, headers only (the bodies stay on the server; no decoding): an ordered consumer from the start
   sequence to the first message after which nothing is pending (:func:`~gamead_core.queue.scan.read_stream`,
   ``follow``). A key only ever moves forward (its rewrite takes a new, higher sequence), so when the consumer
   delivers a message with nothing pending after it, every key then in the bucket at or past the start sequence
   has been delivered at its current sequence or an older one: the key set as of that sequence.
2. **The values**, by key: direct get ``multi_last`` with the keys themselves, :data:`MULTI_LAST_MAX` at a time
   (each request read at one instant by the server), in the order of their sequences. A key comes once, at its
   revision when its request is read (the one of step 1 or a later one); a key gone since (deleted, expired)
   does not come, or comes as its delete marker.

Memory: the keys (~50 bytes each) and one request's values (:data:`MULTI_LAST_MAX` records) at a time. A bucket
without direct gets is read as before (values in stream order, ``follow``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from nats.js import JetStreamContext

from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.direct_batch import (
    MULTI_LAST_MAX,
    BatchEnd,
    DirectGetsOff,
    Entry,
    direct_batch,
)
from gamead_core.queue.scan import read_stream


async def read_keys(js: JetStreamContext, stream: str, subject: str, *, start_seq: int | None = None,
                    timeout: float = 5.0) -> dict[str, int]:
    """The keys (stream subjects) of ``stream`` on ``subject`` with a message at or after ``start_seq``, as of the
    first sequence after which nothing was pending (step 1 of the module doc), each with the sequence it was read
    at, in stream order. Raises :class:`~gamead_core.queue.scan.ScanIncomplete` for a read that stalled or did
    not reach the end within its bound, and the gamead error of a failed NATS request."""
    keys: dict[str, int] = {}
    async with aclosing(read_stream(js, stream, subject, start_seq=start_seq, timeout=timeout, headers_only=True,
                                    follow=True)) as reads:
        async for msg in reads:
            keys.pop(msg.subject, None)  # read again (rewritten meanwhile): its place is its last sequence
            keys[msg.subject] = msg.metadata.sequence.stream
    return keys


async def read_values(js: JetStreamContext, stream: str, keys: list[str], *,
                      timeout: float = 5.0) -> AsyncIterator[Entry]:
    """Yield the current message of each of ``keys`` (stream subjects, each at most once) that still has one,
    :data:`MULTI_LAST_MAX` keys per direct get (step 2 of the module doc). Raises
    :class:`~gamead_core.queue.direct_batch.DirectGetsOff` for a stream without direct gets and the gamead error
    of a failed read."""
    for i in range(0, len(keys), MULTI_LAST_MAX):
        request: dict[str, Any] = {"multi_last": keys[i:i + MULTI_LAST_MAX]}
        async with aclosing(direct_batch(js._nc, stream, request, BatchEnd(), timeout=timeout)) as batch:
            async for entry in batch:
                yield entry


async def read_snapshot(js: JetStreamContext, stream: str, subject: str, *, start_seq: int | None = None,
                        timeout: float = 5.0) -> AsyncIterator[Any]:
    """Yield the current message of every key of ``stream`` on ``subject`` with a message at or after
    ``start_seq`` (the module doc: the keys as of one sequence, each once, at its revision when read). Each has
    ``subject``, ``headers`` and ``data`` (an :class:`~gamead_core.queue.direct_batch.Entry`, or nats-py's ``Msg``
    for a stream without direct gets, read in stream order with ``follow``: a key may then come twice, its older
    revision first). Raises :class:`~gamead_core.queue.scan.ScanIncomplete` when the keys could not be read to
    their end, and the gamead error of a failed read."""
    with nats_boundary():
        direct = bool((await js.stream_info(stream)).config.allow_direct)
    if direct:
        keys = await read_keys(js, stream, subject, start_seq=start_seq, timeout=timeout)
        given = 0
        try:
            async with aclosing(read_values(js, stream, list(keys), timeout=timeout)) as values:
                async for entry in values:
                    given += 1
                    yield entry
            return
        except DirectGetsOff:  # allow_direct turned off since the stream info: read as below, if nothing came yet
            if given:
                raise
    async with aclosing(read_stream(js, stream, subject, start_seq=start_seq, timeout=timeout,
                                    follow=True)) as reads:
        async for msg in reads:
            yield msg
