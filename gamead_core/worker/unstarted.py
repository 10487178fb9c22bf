"""Since when the ads a worker holds unstarted have waited, per level: its heartbeat's ``unstartedSince``.

A worker holds ads it has not started in two places: the inboxes of its long polls (an ad a long poll brought
while every slot was busy, kept for the next free slot: :meth:`~gamead_core.queue.pull.AgingPuller.unstarted`)
and its prefetch buffer (:class:`~gamead_core.worker.prefetch.PrefetchBuffer`). JetStream counts them as ack
pending, not pending, so the queue's head alone says nothing of them: ``/v1/stats``' ``oldestAgeSeconds``,
``gamead top``'s OLDEST, ``gamead_queue_oldest_age_seconds`` and the autoscaler's oldest age left them out, though
they were the oldest waiting ads (attack30a F1: a P5 ad held 12.9 s, shown as 7.7 s and not over its 8 s
horizon). The sampler takes, per level, the earliest of these times over the live workers with the queue head's
(:mod:`gamead_core.stats.unstarted`).

Counted as the queue head is: first deliveries only, waiting since they were submitted (the work stream's time
stamp of the message, the NATS server's clock). A redelivery (a retry, an ad handed back) is left out, as the head
leaves out those waiting in the queue: its record's ``retryAt``, not read here, says when it became due (README
Glossary, "oldest age", lists them). An inbox ad delivered more than ``queue.ack_wait`` ago is not passed in
(:meth:`~gamead_core.queue.long_poll.LongPolls.unstarted`): JetStream has redelivered it, maybe to another worker.

Pure, no I/O: read once per heartbeat (a walk over at most ``worker.prefetch`` buffered ads and one ad per long
poll), nothing per ad on the worker's hot path.
"""

from __future__ import annotations

from collections.abc import Iterable

import nats.errors
from nats.aio.msg import Msg

from gamead_core import names


def waited_since(msg: Msg) -> tuple[int, float] | None:
    """``(level, submit time in epoch s)`` of ``msg``, a work-stream delivery held unstarted; None for a redelivery, a
    message that is not a work-stream delivery (no JetStream metadata, a subject naming no level) or has no time
    stamp. Taken once per ad as it is buffered (:meth:`~gamead_core.worker.prefetch.PrefetchBuffer.push`), not for
    every buffered ad at every announcement (session 33: ~2 % of a burn-down's CPU)."""
    try:
        meta = msg.metadata
        level = names.level_of_subject(msg.subject)
    except (ValueError, IndexError, AttributeError, nats.errors.NotJSMessageError):
        return None
    if (meta.num_delivered or 1) > 1 or meta.timestamp is None:
        return None
    return level, meta.timestamp.timestamp()


def unstarted_since(*held: Iterable[Msg], known: Iterable[tuple[int, float] | None] = ()) -> dict[int, float]:
    """Level → the submit time (epoch seconds) of the oldest first delivery among ``held`` (iterables of work-stream
    deliveries held unstarted) and ``known`` (their :func:`waited_since`, taken already); levels with none are left
    out. A message that is not a work-stream delivery (no JetStream metadata, a subject naming no level) or has no
    time stamp is skipped."""
    out: dict[int, float] = {}
    _earliest(out, known)  # the prefetch buffer's, at every held-ads announcement: no chained generators
    _earliest(out, (waited_since(msg) for msgs in held for msg in msgs))  # (cpuworker48)
    return out


def _earliest(out: dict[int, float], pairs: Iterable[tuple[int, float] | None]) -> None:
    """Each ``(level, at)`` of ``pairs`` (None skipped) into ``out`` where it is the level's earliest."""
    for pair in pairs:
        if pair is not None:
            level, at = pair
            if level not in out or at < out[level]:
                out[level] = at


__all__ = ["unstarted_since", "waited_since"]
