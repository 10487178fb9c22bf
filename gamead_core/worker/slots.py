"""How a full worker's pull loop waits for a free slot (:class:`SlotWatch`): one future, resolved by the ad
that frees a slot, by the stop, or by a timeout (the prefetch buffer's stall), instead of ``asyncio.wait`` on
every running task (a callback added to and removed from each of them per wait; issue 14.2)."""

from __future__ import annotations

import asyncio


class SlotWatch:
    """One waiter at a time (the pull loop). :meth:`freed` may be called at any time, also with no waiter."""

    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        self._waiter: asyncio.Future[bool] | None = None

    def freed(self) -> None:
        """A slot freed (or the worker stops): wake the waiter, if any."""
        self._wake(True)

    def _wake(self, woke: bool) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(woke)

    async def wait(self, timeout: float | None) -> bool:
        """Until :meth:`freed` (True) or ``timeout`` seconds (None: no limit) passed (False)."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, self._wake, False) if timeout is not None else None
        try:
            return await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
