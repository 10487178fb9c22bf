"""What one step of the worker's pull loop (:mod:`.runtime`) asks the queue for (:func:`pull_step`): against the
prefetch buffer's best when the buffer fills the free slots, else the free slots and the prefetch beyond them.

Apart from the loop (alone52): the loop wraps this pull and the start step of what it brought in its queue side
(:class:`~gamead_core.worker.alone.QueueSide`), so that a suspect ad waiting to run alone knows no pull of the
worker is under way, wherever else the loop waits (a slot, a quiet, a storage pause, the stop).
"""

from __future__ import annotations

from nats.aio.msg import Msg

from gamead_core.config import WorkerSettings
from gamead_core.queue.pull import AgingPuller
from gamead_core.worker.prefetch import PrefetchBuffer, prefetch_depth


async def pull_step(puller: AgingPuller, buffer: PrefetchBuffer, free: int, ws: WorkerSettings, concurrency: int,
                    pace: float | None) -> list[Msg]:
    """Ads for ``free`` slots (> 0) of a worker with ``concurrency`` slots, ``buffer`` its prefetch buffer, ``pace``
    its slots' recent seconds an ad (:attr:`~gamead_core.worker.slots.SlotWatch.pace`); errors raised as the
    puller's."""
    buffered = len(buffer)
    if buffered >= free:  # the buffer fills the slots: only what beats the last it would start
        return await puller.pull(free, bar=buffer.bar_key(free))
    extra = prefetch_depth(ws.prefetch, concurrency, pace, ws.prefetch_wait)
    # at least the free slots: a buffered ad (e.g. one a long poll brought beyond what a pull asked for) then
    # competes with as many from the queue as there are slots, so an urgent ad waiting there starts before it
    # (before: with no prefetch it took a slot of its own)
    return await puller.pull(max(free, free + extra - buffered))


__all__ = ["pull_step"]
