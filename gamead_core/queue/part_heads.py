"""A level's view in each work-stream partition (``queue.partitions``), and the level's view made of them. Pure.

The puller (:mod:`gamead_core.queue.pull`) reads each level in every partition: its new ads (``pending``, the oldest's
age) and its due redeliveries (:mod:`gamead_core.queue.due`) are counted per partition, one
:class:`~gamead_core.queue.aging.LevelHead` each. The level competes by their merge (:func:`merge_heads`: its most
patient ad, wherever it waits); a pull of the level goes to its partitions most patient first
(:func:`by_wait`), and each partition's view is brought up to date by what its pull took (:func:`after_pull`), the
level's merged again from them.

So the order is decided across partitions as in one stream (chaos48 F2): before, the level's due retries were
counted over every partition but its pulls went to the partition with the oldest *new* ad, and what a pull took was
counted off the merged view. A level whose timed retries waited in other partitions kept its retries' wait while its
pulls served its fresh ads in a row, ahead of less urgent ads due long before them (3,622 of 11,250 first deliveries
against the aging rule at partitions 3, 0 at partitions 1; ``tests/integration/test_partition_aging.py``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import TYPE_CHECKING

from gamead_core.queue.aging import LevelHead
from gamead_core.queue.pull_request import next_head_age, pending_behind

if TYPE_CHECKING:
    from nats.aio.msg import Msg


def merge_heads(level: int, heads: Collection[LevelHead]) -> LevelHead:
    """One level's view over its partitions' ``heads``: counts summed, the longest wait of each kind (new ads: of
    partitions with one pending; due redeliveries: of partitions with one due). The one head itself for one."""
    if len(heads) == 1:
        return next(iter(heads))
    pending = due = ack_pending = 0
    head_age = due_age = 0.0
    for h in heads:
        pending, due, ack_pending = pending + h.pending, due + h.due, ack_pending + h.ack_pending
        if h.pending > 0 and h.head_age > head_age:
            head_age = h.head_age
        if h.due > 0 and h.due_age > due_age:
            due_age = h.due_age
    return LevelHead(level, pending, head_age, ack_pending, due, due_age)


def by_wait(heads: dict[int, LevelHead]) -> list[int]:
    """The partitions a pull of one level goes to, in order: those with ads ready (new or due), the most patient
    first (ties: the lower partition); then those with only ack pending ads (redeliveries may have come due there
    unseen). A partition with nothing is left out."""
    ready = sorted((p for p, h in heads.items() if h.pending + h.due > 0), key=lambda p: (-heads[p].wait, p))
    return ready + sorted(p for p, h in heads.items() if h.pending + h.due <= 0 and h.ack_pending)


def after_pull(head: LevelHead, msgs: list[Msg], want: int, read_at: float) -> tuple[LevelHead, int]:
    """``head`` (one partition's, or the level's in one stream, read at ``read_at`` epoch s) once a pull asking for
    ``want`` took ``msgs``, and how many due redeliveries it took. A short answer: nothing waits any more. A full
    one: what the view counted less what was taken, but never fewer new ads than the deliveries say wait behind them
    (:func:`~gamead_core.queue.pull_request.pending_behind`); the next new ad no older than the last one taken."""
    redelivered = 0
    if head.due:
        for m in msgs:
            if (m.metadata.num_delivered or 1) > 1:
                redelivered += 1
    taken_due = min(head.due, redelivered)
    if len(msgs) < want:
        return replace(head, pending=0, due=0), taken_due
    return replace(head, due=head.due - taken_due,
                   pending=max(0, head.pending - (len(msgs) - taken_due), pending_behind(msgs)),
                   head_age=next_head_age(head.head_age, read_at, msgs)), taken_due


__all__ = ["after_pull", "by_wait", "merge_heads"]
