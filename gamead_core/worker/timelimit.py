"""The time limit of one analysis attempt (``worker.task_timeout``): past it the attempt is cancelled and
fails as :class:`~gamead_core.errors.TaskTimeout` (retryable, so it is retried with backoff, then
dead-lettered after ``worker.max_attempts``).

Every attempt of a worker has the same limit, so one timer serves them all
(:class:`~gamead_core.worker.timers.Deadlines`), not an ``asyncio.timeout`` per attempt (issue 14.2). Past
the limit the attempt's task is cancelled and the cancellation turned into :class:`TaskTimeout`, as
``asyncio.timeout`` does it (``Task.uncancel``: a cancellation from elsewhere, a shutdown, still cancels).
"""

from __future__ import annotations

import asyncio

from gamead_core.errors import TaskTimeout
from gamead_core.models import AdRecord, Analysis
from gamead_core.worker.hooks import Analyse, Hook
from gamead_core.worker.timers import Deadlines


class _Expiry:
    __slots__ = ("task", "cancelling", "fired")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self.task = task
        self.cancelling = task.cancelling()  #: cancellations requested before the attempt started
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        self.task.cancel()


class TimeLimit(Hook):
    """Cancels an attempt that runs longer than ``seconds`` (fault injection's ``hang`` included)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadlines = Deadlines(seconds)

    async def around_attempt(self, record: AdRecord, call: Analyse) -> Analysis:
        task = asyncio.current_task()
        assert task is not None
        expiry = _Expiry(task)
        self._deadlines.add(expiry, expiry.fire)
        try:
            return await call()
        except asyncio.CancelledError:
            if expiry.fired and task.uncancel() <= expiry.cancelling:
                raise TaskTimeout(f"analysis took longer than worker.task_timeout ({self.seconds:g}s)") from None
            raise
        finally:
            self._deadlines.remove(expiry)
