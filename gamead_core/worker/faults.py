"""Fault injection for drills (``worker.faults``): make chosen ads fail on purpose, in a chosen way."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from gamead_core.config import FaultSettings


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
    if settings.match and not re.search(settings.match, title):
        return None
    if settings.rate < 1:
        key = f"{ad_id}:{attempt}" if not generation else f"{ad_id}:{generation}:{attempt}"
        digest = hashlib.sha256(key.encode()).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 >= settings.rate:
            return None
    return Fault(settings.mode)
