"""Fault injection for drills (``worker.faults``): make chosen ads fail on purpose, in a chosen way.

:func:`pick_fault` decides (pure); :class:`FaultInjection` is the worker hook that acts on the decision just
before the analysis: ``retryable``/``permanent`` raise, ``hang`` sleeps past the time limit, ``crash`` ends the
process at once with :data:`CRASH_EXIT_CODE` (as an OOM kill would: no drain, no hand-back).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass

from gamead_core.config import FaultSettings
from gamead_core.errors import PermanentError, RetryableError
from gamead_core.models import AdRecord
from gamead_core.worker.hooks import Hook

log = logging.getLogger(__name__)

#: Exit code of an injected ``crash`` fault (the process dies hard, as on an OOM kill).
CRASH_EXIT_CODE = 70


@dataclass(frozen=True)
class Fault:
    mode: str  # retryable | permanent | crash | hang


def pick_fault(
    settings: FaultSettings, title: str, ad_id: str, attempt: int, generation: int = 0
) -> Fault | None:
    """The fault to inject into this attempt, or None. Pure: the same draw always decides alike.

    ``rate`` is applied per attempt through a hash of (ad id, ``generation``, attempt), so a 0.5 rate fails
    about half of all attempts and a retried ad may succeed later, as with a real flaky dependency.
    ``generation`` is what makes a DLQ replay a new draw: pass the record's ``replayOf`` (the DLQ entry it was
    last replayed from; 0 before any replay), since a replay restarts at attempt 1. With ``attempts`` = N
    only attempts 1..N can fail (a dependency that recovers).
    """
    if settings.rate <= 0:
        return None
    if settings.attempts and attempt > settings.attempts:
        return None
    if not settings.title_matches(title):  # RE2, compiled when the settings were built
        return None
    if settings.rate < 1:
        key = f"{ad_id}:{attempt}" if not generation else f"{ad_id}:{generation}:{attempt}"
        digest = hashlib.sha256(key.encode()).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 >= settings.rate:
            return None
    return Fault(settings.mode)


class FaultInjection(Hook):
    """The ``worker.faults`` drill as a hook: fails the attempts :func:`pick_fault` picks, in its mode.
    ``hang_for``: seconds a ``hang`` sleeps (well past ``worker.task_timeout``, which cancels it)."""

    def __init__(self, settings: FaultSettings, *, hang_for: float) -> None:
        self.settings = settings
        self.hang_for = hang_for

    async def on_start(self) -> None:
        faults = self.settings
        log.warning("FAULT INJECTION IS ON: %.0f%% of attempts on titles matching %r will fail as %r",
                    faults.rate * 100, faults.match or ".*", faults.mode)

    async def before_attempt(self, record: AdRecord) -> None:
        fault = pick_fault(self.settings, record.ad.title, record.id, record.attempts,
                           generation=record.replay_of or 0)
        if fault is None:
            return
        log.warning("injecting a %s fault into ad %s", fault.mode, record.id, extra={"ad_id": record.id})
        if fault.mode == "crash":
            os._exit(CRASH_EXIT_CODE)
        if fault.mode == "hang":
            await asyncio.sleep(self.hang_for)
        if fault.mode == "permanent":
            raise PermanentError("injected permanent fault (worker.faults)")
        raise RetryableError("injected retryable fault (worker.faults)")
