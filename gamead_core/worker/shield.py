"""Writes and acknowledgements that cancellation must not cut in half (arq's ``asyncio.shield`` habit).

``shield(coro)`` runs ``coro`` to its end even if the task awaiting it is cancelled (a shutdown), and
:meth:`Shield.wait` lets the drain wait for every such write still running: an ad is never left half-written.
The wait's own deadline never cuts them (reap45: a ``gather`` under ``wait_for`` cancelled every write and ack still
running at the drain's deadline, e.g. a settle round between its record write and its ack): what is left runs on
through the rest of the stop, and :meth:`Shield.ads` names the ads it writes, for the drain's WARNING.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from gamead_core.logs import current_ad_id

T = TypeVar("T")
Ads = Callable[[], Iterable[str]]  #: the ads a tracked task writes, asked when they are named


class Shield:
    """The shielded writes of one worker."""

    def __init__(self) -> None:
        self._running: dict[asyncio.Future[Any], Ads] = {}

    def __call__(self, coro: Awaitable[T]) -> Awaitable[T]:
        """Run ``coro`` to completion even if the caller is cancelled; await the result as usual. Its ad: the
        caller's (its log fields' ``ad_id``, :func:`gamead_core.logs.ad_fields`), if any."""
        fut = asyncio.ensure_future(coro)
        ad_id = current_ad_id()
        self.track(fut, (lambda: (ad_id,)) if ad_id else tuple)
        return asyncio.shield(fut)

    def track(self, fut: asyncio.Future[Any], ads: Ads = tuple) -> None:
        """Count ``fut`` (a task that no caller's cancellation reaches, e.g. a settle round writing ``ads()``)
        among the writes :meth:`wait` waits for."""
        self._running[fut] = ads
        fut.add_done_callback(self._ended)

    def _ended(self, fut: asyncio.Future[Any]) -> None:
        self._running.pop(fut, None)

    async def wait(self, timeout: float | None = None) -> int:
        """Until every shielded write has ended (their errors are their callers' business), or ``timeout`` s have
        passed: then those still running are left running, never cancelled (nor when this wait is). Returns how
        many are still running."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=timeout)
        return len(self._running)

    def ads(self) -> list[str]:
        """The ads of the writes still running (sorted, each once)."""
        return sorted({ad_id for ads in list(self._running.values()) for ad_id in ads()})
