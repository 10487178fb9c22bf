"""Running a suspect ad alone on its worker, so that a crash during its analysis is attributable.

A worker's slots pass through one :class:`SoloGate`:

* ``async with gate.shared():`` an ordinary analysis; it waits while a solo analysis runs or waits to run.
* ``async with gate.solo():`` a suspect ad (see :mod:`gamead_core.worker.budget`); it waits until no other
  analysis runs, then runs with the worker to itself. Solo analyses run one after another, in arrival order.
* :attr:`SoloGate.blocked` is True while a solo analysis runs or waits: the worker pulls nothing new then
  (ads it pulls would only wait, holding their lease).

No I/O: an asyncio condition around two counters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class SoloGate:
    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self.running = 0  #: analyses inside the gate (shared or solo)
        self._solo_waiting = 0
        self._solo_running = False

    @property
    def blocked(self) -> bool:
        """True while a solo analysis runs or waits for the others to finish."""
        return self._solo_running or self._solo_waiting > 0

    @asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self.blocked)
            self.running += 1
        try:
            yield
        finally:
            await self._leave()

    @asynccontextmanager
    async def solo(self) -> AsyncIterator[None]:
        async with self._cond:
            self._solo_waiting += 1
            try:
                await self._cond.wait_for(lambda: self.running == 0 and not self._solo_running)
            finally:
                self._solo_waiting -= 1
                if not self._solo_waiting:
                    self._cond.notify_all()  # a cancelled wait may unblock shared analyses
            self._solo_running = True
            self.running += 1
        try:
            yield
        finally:
            self._solo_running = False
            await self._leave()

    async def _leave(self) -> None:
        # Shielded: a cancelled task must still give its place back, or the gate would stay shut.
        await asyncio.shield(self._release())

    async def _release(self) -> None:
        async with self._cond:
            self.running -= 1
            self._cond.notify_all()

    async def wait_unblocked(self) -> None:
        """Return once no solo analysis runs or waits."""
        async with self._cond:
            await self._cond.wait_for(lambda: not self.blocked)
