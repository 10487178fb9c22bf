"""The autoscaler's retry back-off (:class:`Backoff`) and its waits (:func:`wait_any`, :func:`wait_backoff`).

The back-off grows with consecutive failures *of one kind* — what failed, and for a scale call the count it
asked for — and starts again at the first step when the kind changes, when a tick succeeds, and when a new
desired count arrives (a ``gamead scale set``). Before, one counter ran across kinds: after seven 409s to a
PATCH, an unrelated read timeout was "attempt 8, retrying in 30.0s", and a new ``scale set`` waited that out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable

from gamead_core.scaling.policy import retry_delay


class Backoff:
    """Consecutive failures of one kind: :meth:`failed` returns (attempt, seconds to wait); :meth:`reset` after a
    success or a new desired count."""

    def __init__(self) -> None:
        self.kind: Hashable | None = None  #: what failed last (None: nothing since the last success)
        self.attempt = 0  #: consecutive failures of that kind

    def failed(self, kind: Hashable) -> tuple[int, float]:
        """One more failure of ``kind`` (``("scale", desired)``, ``("cannot read the replica count",)``…): the
        attempt number (1 when the kind differs from the last failure's) and the seconds before the next try."""
        self.attempt = self.attempt + 1 if kind == self.kind else 1
        self.kind = kind
        return self.attempt, retry_delay(self.attempt)

    def reset(self) -> None:
        self.kind, self.attempt = None, 0


async def wait_any(*events: asyncio.Event, timeout: float | None) -> None:
    """Wait until any of ``events`` is set, or ``timeout`` seconds."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def wait_backoff(delay: float, every: float, events: list[asyncio.Event],
                       changed: Callable[[], Awaitable[bool]]) -> None:
    """Wait ``delay`` seconds, or until one of ``events`` is set; a wait longer than ``every`` seconds asks
    ``changed()`` (e.g. a new override in the bucket) every ``every`` seconds and ends when it says True."""
    loop = asyncio.get_running_loop()
    end = loop.time() + delay
    while (left := end - loop.time()) > 0:
        await wait_any(*events, timeout=min(left, every))
        if any(e.is_set() for e in events) or (left > every and await changed()):
            return


__all__ = ["Backoff", "wait_any", "wait_backoff"]
