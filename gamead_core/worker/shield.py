"""Writes and acknowledgements that cancellation must not cut in half (arq's ``asyncio.shield`` habit).

``shield(coro)`` runs ``coro`` to its end even if the task awaiting it is cancelled (a shutdown), and
:meth:`Shield.wait` lets the drain wait for every such write still running: an ad is never left half-written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


class Shield:
    """The shielded writes of one worker."""

    def __init__(self) -> None:
        self._running: set[asyncio.Future[Any]] = set()

    def __call__(self, coro: Awaitable[T]) -> Awaitable[T]:
        """Run ``coro`` to completion even if the caller is cancelled; await the result as usual."""
        fut = asyncio.ensure_future(coro)
        self._running.add(fut)
        fut.add_done_callback(self._running.discard)
        return asyncio.shield(fut)

    def track(self, fut: asyncio.Future[Any]) -> None:
        """Count ``fut`` (a task that no caller's cancellation reaches, e.g. a settle round) among the writes
        :meth:`wait` waits for."""
        self._running.add(fut)
        fut.add_done_callback(self._running.discard)

    async def wait(self) -> None:
        """Until every shielded write has ended (their errors are their callers' business)."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
