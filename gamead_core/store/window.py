"""Where the newest ``count`` messages of a stream begin: the window a record listing reads (``GET /ads``).

A KV bucket with ``history=1`` keeps one message per key, but every write takes a new stream sequence and
frees the key's older one, so its sequences are sparse: an ad written three times (queued, processing,
completed) leaves one message and two holes. The last ``count`` *sequences* then hold far fewer than ``count``
records (a reviewer's 6,401 ads held 3,999 in the last 10,000 sequences, and an old dead ad was outside them).

:func:`newest_window` finds the first sequence from which exactly ``count`` messages remain, by asking the
server how many messages lie at or after a sequence (``num_pending`` of a consumer created there, then deleted:
no message is read). The answer is a step function of the sequence, so a search bracketed by the stream's
first and last sequence finds it in about log2(last - first) questions (14 for 16,000 sequences; an
interpolated guess first, so usually far fewer). The reading stops at ``last`` (the stream's end when the search
began), but a question asked later also counts the messages written since, less the records they replaced: while
ads are being written the window may start a little late and hold a few fewer than ``count`` records.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from gamead_core.queue.connection import nats_boundary

PROBE_INACTIVE = 30.0  #: seconds: a probe consumer the search could not delete goes by itself after this


@dataclass(frozen=True, slots=True)
class Window:
    """The newest messages of a stream: read from ``start`` to ``last`` (sequences; ``start`` > ``last``: the
    stream is empty). ``messages``: how many lie there (at most the ``count`` asked for). ``whole``: the
    window starts at the stream's first message, so it holds every message the stream had."""

    start: int
    last: int
    messages: int
    whole: bool


async def _pending(js: JetStreamContext, stream: str, subject: str, seq: int) -> int:
    """Messages of ``stream`` on ``subject`` at or after sequence ``seq`` now (a consumer created there and
    deleted; nothing is delivered)."""
    config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=seq,
                            filter_subject=subject, ack_policy=AckPolicy.NONE, mem_storage=True, num_replicas=1,
                            inactive_threshold=PROBE_INACTIVE, headers_only=True)
    with nats_boundary():
        info = await js.add_consumer(stream, config)
    try:
        return int(info.num_pending or 0)
    finally:
        with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError):  # inactive_threshold removes it anyway
            await js.delete_consumer(stream, info.name)


async def newest_window(js: JetStreamContext, stream: str, subject: str, count: int) -> Window:
    """The window of the newest ``count`` messages (``count`` ≥ 1) of ``stream`` on ``subject`` (the subject
    covering the whole stream): its first sequence, last sequence (the stream's end when the call started),
    how many messages it holds, and whether it is the whole stream. Raises the gamead error of a failed NATS
    request (:class:`gamead_core.queue.connection.nats_boundary`)."""
    with nats_boundary():
        state = (await js.stream_info(stream)).state
    first, last, total = state.first_seq, state.last_seq, state.messages
    if total <= count:
        return Window(first if total else last + 1, last, total, True)
    lo, lo_pending = first, total  # invariant: pending(lo) > count >= pending(hi)
    hi, hi_pending = last + 1, 0
    bisect = False
    while hi - lo > 1:
        if bisect:  # alternate with bisection: log2 steps at worst whatever the spacing of the holes
            mid = (lo + hi) // 2
        else:  # interpolate: the messages are spread about evenly over the sequences
            mid = lo + round((lo_pending - count) * (hi - lo) / max(1, lo_pending - hi_pending))
            mid = min(hi - 1, max(lo + 1, mid))
        bisect = not bisect
        pending = await _pending(js, stream, subject, mid)
        if pending > count:
            lo, lo_pending = mid, pending
        else:
            hi, hi_pending = mid, pending
            if pending == count:
                break  # any start between the message before and this one reads the same messages
    return Window(hi, last, min(count, hi_pending), False)
