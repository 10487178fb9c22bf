"""A read's subscription (a pull feed's consumer, too) given up whenever the reader is cancelled: while the
consumer is being created, or again while the read's end gives it up (attack39c F2, left40)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

import nats.errors

from gamead_core.stop_bound import hand_late, keep


class Unsubscribable(Protocol):
    """nats-py's ``Subscription`` or a :class:`~gamead_core.queue.pull_feed.PullFeed`."""

    async def unsubscribe(self) -> Any: ...


S = TypeVar("S", bound=Unsubscribable)

async def _quietly(sub: Unsubscribable) -> None:
    with contextlib.suppress(nats.errors.Error):
        await sub.unsubscribe()


async def opened(starting: Awaitable[S]) -> S:
    """What ``starting`` (a read's start: :func:`~gamead_core.queue.pull_feed.pull_feed`) makes. Cancelled while
    it is under way, the start still ends, on its own (its own bounds: the JetStream request timeout), and what it
    made is unsubscribed; the reader's ``CancelledError`` leaves at once. Before, a cancel while the consumer's
    creation awaited nats-server's answer left the consumer, made but never known, on nats-server until its
    ``inactive_threshold`` (120 s; left40: 200 reads cancelled 0.05 s after they began, 186 consumers left).
    Raises what ``starting`` raises."""
    task = asyncio.ensure_future(starting)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        hand_late(task, _quietly)  # what the start makes once it ends is given up
        raise


async def unsubscribe_quietly(sub: Unsubscribable) -> None:
    """Unsubscribe ``sub`` on the way out of a read; a NATS error is ignored (the connection is closing or gone,
    and the server drops the interest with it): the read's own result or error is what counts. Runs as its own
    task, shielded: a reader cancelled again meanwhile (a client disconnect's cancel over a timeout's, a shutdown
    over either) leaves at once and the unsubscription ends on its own (its bounds: ``pull_feed.DELETE_WAIT``)."""
    task = asyncio.ensure_future(_quietly(sub))
    keep(task)
    await asyncio.shield(task)
