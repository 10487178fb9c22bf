"""A read's subscription (a pull feed's consumer, too) given up whenever the reader is cancelled: while the
consumer is being created, or again while the read's end gives it up (attack39c F2, left40)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

import nats.errors


class Unsubscribable(Protocol):
    """nats-py's ``Subscription`` or a :class:`~gamead_core.queue.pull_feed.PullFeed`."""

    async def unsubscribe(self) -> Any: ...


S = TypeVar("S", bound=Unsubscribable)

#: starts and ends under way whose reader was cancelled meanwhile (held so they are not collected half-done)
_ENDING: set[asyncio.Future[Any]] = set()


def _keep(task: asyncio.Future[Any]) -> None:
    _ENDING.add(task)
    task.add_done_callback(_ENDING.discard)


async def _quietly(sub: Unsubscribable) -> None:
    with contextlib.suppress(nats.errors.Error):
        await sub.unsubscribe()


def _end_late(task: asyncio.Future[Any]) -> None:
    """The start of a read whose reader was cancelled meanwhile has ended: what it made is given up."""
    if not task.cancelled() and task.exception() is None:
        _keep(asyncio.ensure_future(_quietly(task.result())))


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
        _keep(task)
        task.add_done_callback(_end_late)
        raise


async def unsubscribe_quietly(sub: Unsubscribable) -> None:
    """Unsubscribe ``sub`` on the way out of a read; a NATS error is ignored (the connection is closing or gone,
    and the server drops the interest with it): the read's own result or error is what counts. Runs as its own
    task, shielded: a reader cancelled again meanwhile (a client disconnect's cancel over a timeout's, a shutdown
    over either) leaves at once and the unsubscription ends on its own (its bounds: ``pull_feed.DELETE_WAIT``)."""
    task = asyncio.ensure_future(_quietly(sub))
    _keep(task)
    await asyncio.shield(task)
