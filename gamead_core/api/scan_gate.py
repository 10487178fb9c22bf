"""How many record scans (``GET /ads``) one API node runs at once (:class:`ScanGate`).

A filtered page reads up to ``api.list_scan_limit`` records (10,000 by default: ~28 MB of messages and ~1 s of
CPU to decode). A reviewer's 40 such requests at once took the API from 87 to 433 MB RSS, never given back, and
a submit waited 1.9 s behind them. The gate runs ``api.list_scans`` scans at once, lets as many again wait their
turn, and refuses the rest at once with 503 ``list_busy`` (``Retry-After``), as a bounded work queue does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from gamead_core.api.errors import ListBusy


class ScanGate:
    """``running`` scans at once, ``running`` more waiting; beyond that :class:`ListBusy` (503). ``what``: one
    scan, as the refusal names it (singular: the count decides the plural);
    ``setting``: the setting that bounds them."""

    def __init__(self, running: int, what: str = "record scan", setting: str = "api.list_scans") -> None:
        self._slots = asyncio.Semaphore(running)
        self._running = running
        self._waiting = 0
        self._what, self._setting = what, setting

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one scan slot for the block. Raises :class:`ListBusy` if every slot is taken and ``running``
        requests already wait for one."""
        if self._slots.locked() and self._waiting >= self._running:
            plural = "s" if self._running != 1 else ""  # "1 DLQ scans" before (newcomer35 F5)
            raise ListBusy(f"this API node already runs {self._running} {self._what}{plural} ({self._setting}) with "
                           f"{self._waiting} waiting: try again shortly",
                           details={"running": self._running, "waiting": self._waiting})
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()
