"""Running a suspect ad alone on its worker, so that a crash during its analysis is attributable.

A worker's slots pass through one :class:`SoloGate`:

* ``async with gate.shared():`` an ordinary analysis; it waits while a solo analysis runs or waits to run.
* ``async with gate.solo():`` a suspect ad (see :mod:`gamead_core.worker.budget`); it waits until no other
  analysis runs, then runs with the worker to itself. Solo analyses run one after another, in arrival order.
* :attr:`SoloGate.blocked` is True while a solo analysis runs or waits: the worker pulls nothing new then
  (ads it pulls would only wait, holding their lease).

No I/O, and no lock: two counters and a list of waiting futures (woken in arrival order at each change).
Entering an open gate and leaving it never suspend (the common case costs no task, future or lock: issue
14.2; the lock and the shielded release it replaced cost ~15 µs per ad), so a cancelled task always gives its
place back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType


class _Shared:
    """``async with gate.shared():`` (one object per gate: it keeps no state of its own)."""

    __slots__ = ("_gate",)

    def __init__(self, gate: SoloGate) -> None:
        self._gate = gate

    async def __aenter__(self) -> None:
        gate = self._gate
        if gate.blocked:
            await gate._until(lambda: not gate.blocked)  # noqa: SLF001 - the gate's own helper
        gate.running += 1

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._gate._leave()  # noqa: SLF001


class _Solo:
    """``async with gate.solo():``."""

    __slots__ = ("_gate",)

    def __init__(self, gate: SoloGate) -> None:
        self._gate = gate

    async def __aenter__(self) -> None:
        gate = self._gate
        gate._solo_waiting += 1  # noqa: SLF001
        try:
            await gate._until(lambda: gate.running == 0 and not gate._solo_running)  # noqa: SLF001
        finally:
            gate._solo_waiting -= 1  # noqa: SLF001
            if not gate._solo_waiting:  # noqa: SLF001
                gate._notify()  # noqa: SLF001 - a cancelled wait may unblock shared analyses
        gate._solo_running = True  # noqa: SLF001
        gate.running += 1

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._gate._solo_running = False  # noqa: SLF001
        self._gate._leave()  # noqa: SLF001


class SoloGate:
    def __init__(self) -> None:
        self.running = 0  #: analyses inside the gate (shared or solo)
        self._solo_waiting = 0
        self._solo_running = False
        self._waiters: list[asyncio.Future[None]] = []  #: tasks waiting for a change, in arrival order
        self._shared = _Shared(self)
        self._solo = _Solo(self)

    @property
    def blocked(self) -> bool:
        """True while a solo analysis runs or waits for the others to finish."""
        return self._solo_running or self._solo_waiting > 0

    def shared(self) -> _Shared:
        """An ordinary analysis: ``async with gate.shared():`` (waits only while :attr:`blocked`)."""
        return self._shared

    def solo(self) -> _Solo:
        """A suspect ad: ``async with gate.solo():`` (waits until nothing else runs, then runs alone)."""
        return self._solo

    async def _until(self, ready: Callable[[], bool]) -> None:
        """Wait until ``ready()``, checked after each change of the gate (waiters woken in arrival order)."""
        loop = asyncio.get_running_loop()
        while not ready():
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done() or waiter.cancelled():  # cancelled: leave the list
                    try:
                        self._waiters.remove(waiter)
                    except ValueError:
                        pass

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def leave(self) -> None:
        """An analysis that entered the open gate without its ``async with`` (the batch start: ``running += 1``
        while not :attr:`blocked`, in the same turn) leaves it."""
        self._leave()

    def _leave(self) -> None:
        self.running -= 1
        if self._waiters:
            self._notify()

    async def wait_unblocked(self) -> None:
        """Return once no solo analysis runs or waits."""
        await self._until(lambda: not self.blocked)
