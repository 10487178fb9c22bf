"""The time limit of one analysis attempt (``worker.task_timeout``): past it the attempt is cancelled and
fails as :class:`~gamead_core.errors.TaskTimeout` (retryable, so it is retried with backoff, then
dead-lettered after ``worker.max_attempts``)."""

from __future__ import annotations

import asyncio

from gamead_core.errors import TaskTimeout
from gamead_core.models import AdRecord, Analysis
from gamead_core.worker.hooks import Analyse, Hook


class TimeLimit(Hook):
    """Cancels an attempt that runs longer than ``seconds`` (fault injection's ``hang`` included)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def around_attempt(self, record: AdRecord, call: Analyse) -> Analysis:
        try:
            async with asyncio.timeout(self.seconds):
                return await call()
        except TimeoutError:
            raise TaskTimeout(f"analysis took longer than worker.task_timeout ({self.seconds:g}s)") from None
