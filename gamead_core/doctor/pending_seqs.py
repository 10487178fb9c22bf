"""Which messages a level consumer has ack pending, by stream sequence, for the doctor's ``ack_pending_unheld`` check
(:mod:`gamead_core.doctor.unheld`).

JetStream says how many (``num_ack_pending``), not which. A work stream has work-queue retention: an acknowledged
message is gone from it, and every message of the consumer's subject up to its last delivered one has been delivered.
So the messages of that subject still in the stream after the consumer's ack floor and up to its last delivered
sequence are the ones it has pending (acknowledgement-pending, or ``nak``'ed and waiting for their redelivery): one
batched direct get (:func:`gamead_core.queue.direct_batch.direct_batch`) of at most ``num_ack_pending`` + a few
messages. Read twice, a delivery counts unheld only when its message is pending in both readings and no worker
announced holding it meanwhile (probe49 F3: counts compared at two instants took a live worker's fresh deliveries
and acks in flight for a dead worker's, 2 to 8 a run at 100 ads/s on a loaded machine).
"""

from __future__ import annotations

import logging
from contextlib import aclosing

from nats.aio.client import Client as NATS
from nats.js.api import ConsumerInfo

from gamead_core.doctor.announced import HeldKey
from gamead_core.errors import GameadError
from gamead_core.queue.direct_batch import BatchEnd, direct_batch

log = logging.getLogger(__name__)

#: Messages more than a consumer's ``num_ack_pending`` one read asks for (acks and deliveries since its info)
SLACK = 16
#: Most ack-pending messages of one consumer read by sequence; above, the check compares counts (as before)
MOST = 2000


class Span:
    """A consumer's pending range as its info said: stream, consumer, subject, after ``floor``, up to ``last``."""

    __slots__ = ("stream", "consumer", "subject", "floor", "last", "pending")

    def __init__(self, info: ConsumerInfo) -> None:
        self.stream, self.consumer = info.stream_name, info.name
        self.subject = info.config.filter_subject or ""
        self.floor = int(info.ack_floor.stream_seq or 0) if info.ack_floor is not None else 0
        self.last = int(info.delivered.stream_seq or 0) if info.delivered is not None else 0
        self.pending = int(info.num_ack_pending or 0)


async def pending_in(nc: NATS, span: Span, timeout: float) -> set[HeldKey] | None:
    """The messages of ``span`` still in its stream now (ack pending, or waiting for a redelivery), keyed as
    :func:`gamead_core.doctor.announced.held_key` keys a held delivery; None when they cannot all be read (no
    subject, too many, direct gets off, no answer in time)."""
    if not span.pending or span.last <= span.floor:
        return set()
    if not span.subject or span.pending > MOST:
        return None
    ask = span.pending + SLACK
    seqs: set[HeldKey] = set()
    end = BatchEnd()
    try:
        request = {"seq": span.floor + 1, "next_by_subj": span.subject, "batch": ask}
        async with aclosing(direct_batch(nc, span.stream, request, end, timeout=timeout)) as batch:
            async for entry in batch:
                if entry.seq > span.last:
                    return seqs
                seqs.add((span.stream, span.consumer, entry.seq))
    except GameadError as exc:
        log.debug("doctor: pending messages of %s: %s", span.consumer, exc.message)
        return None
    if end.pending and len(seqs) >= ask:  # the batch ended before the last delivered one: not all read
        return None
    return seqs


__all__ = ["MOST", "SLACK", "Span", "pending_in"]
