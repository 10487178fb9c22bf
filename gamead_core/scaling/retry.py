"""The autoscaler's retry back-off (:class:`Backoff`) and its waits (:func:`wait_any`, :func:`wait_backoff`).

The wait grows with the failures in a row of any kind (a sustained outage whose calls fail in turn, a read
then a PATCH, still backs off to the cap instead of retrying every 0.5 s), and starts again at the first step
when a tick succeeds and when an operator's override changes (a ``gamead scale set``/``clear`` on any node: it
is acted on at once, not after the wait). The *attempt* a log line and status name counts the failures of one
kind — what failed, and for a scale call the count it asked for — so a read timeout after seven 409s to a PATCH
is "attempt 1" of its own (before, one counter ran across kinds and named it attempt 8).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable

from gamead_core.scaling.policy import retry_delay


class Backoff:
    """Failures since the last success: :meth:`failed` returns (attempt of this kind, seconds to wait);
    :meth:`reset` after a success or a changed override."""

    def __init__(self) -> None:
        self.kind: Hashable | None = None  #: what failed last (None: nothing since the last success)
        self.attempt = 0  #: consecutive failures of that kind (the number a log line and status name)
        self.streak = 0  #: failures in a row of any kind (what the wait grows with)

    def failed(self, kind: Hashable) -> tuple[int, float]:
        """One more failure of ``kind`` (``("scale", desired)``, ``("cannot read the replica count",)``…): the
        attempt number (1 when the kind differs from the last failure's) and the seconds before the next try,
        :func:`~gamead_core.scaling.policy.retry_delay` of the failures in a row (0.5 s, doubling, 30 s cap)."""
        self.attempt = self.attempt + 1 if kind == self.kind else 1
        self.kind = kind
        self.streak += 1
        return self.attempt, retry_delay(self.streak)

    def reset(self) -> None:
        self.kind, self.attempt, self.streak = None, 0, 0


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
