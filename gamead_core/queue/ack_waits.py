"""What waits for JetStream publish acks on the reply subscription of :mod:`gamead_core.queue.acks`: a single
publish's :class:`One`, a batch's :class:`Group` (a slot per message), each keeping what a resend of "no
responders" needs (:mod:`gamead_core.queue.resend`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gamead_core.queue.acks import Ack

__all__ = ["Group", "Message", "One"]

Message = tuple[str, bytes, dict[str, str]]  #: (subject, payload, headers)


class One:
    """The ack of one :func:`~gamead_core.queue.acks.publish_acked`: its future, its message (sent again on "no
    responders": :mod:`gamead_core.queue.acks`), the loop time its ack is awaited until, when its last try was
    sent, and how often it was sent again."""

    __slots__ = ("future", "message", "deadline", "sent", "tries")

    def __init__(self, future: asyncio.Future[Ack], message: Message, deadline: float, sent: float) -> None:
        self.future = future
        self.message = message
        self.deadline = deadline
        self.sent = sent
        self.tries = 0


class Group:
    """The acks of one :func:`~gamead_core.queue.acks.publish_many`: a slot per message and one waiter, woken when
    the last slot is filled (no future, callback or deadline per message). ``messages``, ``sent`` (loop time the
    group began), ``deadline`` (loop time its acks are awaited until at the latest) and ``tokens`` (every reply
    token of the group, dropped when it ends) serve the resends of "no responders" (:mod:`gamead_core.queue.acks`);
    ``again``: index → (resends made, loop time of the last), made on the first; ``slices``: the loop time each
    slice of ``slice`` messages began to be written (:meth:`first_sent`)."""

    __slots__ = ("results", "left", "waiter", "messages", "sent", "deadline", "tokens", "again", "slices", "slice")

    def __init__(self, results: list[Ack | BaseException | None], left: int,
                 waiter: asyncio.Future[None], messages: Sequence[Message | BaseException], sent: float,
                 deadline: float, slice_: int = 1) -> None:
        self.results = results
        self.left = left
        self.waiter = waiter
        self.messages = messages
        self.sent = sent
        self.deadline = deadline
        self.tokens: list[str] = []
        self.again: dict[int, tuple[int, float]] | None = None
        self.slices: list[float] = []
        self.slice = slice_

    def first_sent(self, index: int) -> float:
        """The loop time message ``index`` was first sent at the earliest: its slice's start (left42: the group's
        start made a late message of a big batch look as slow as the whole write, and its resend was given up)."""
        slot = index // self.slice
        return self.slices[slot] if slot < len(self.slices) else self.sent

    def fill(self, index: int, answer: Ack | BaseException) -> None:
        self.results[index] = answer
        self.left -= 1
        if self.left == 0 and not self.waiter.done():
            self.waiter.set_result(None)
