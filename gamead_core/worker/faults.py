"""Fault injection for drills (``worker.faults``): make chosen ads fail on purpose, in a chosen way."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from gamead_core.config import FaultSettings


@dataclass(frozen=True)
class Fault:
    mode: str  # retryable | permanent | crash | hang


def pick_fault(settings: FaultSettings, title: str, ad_id: str, attempt: int) -> Fault | None:
    """The fault to inject into this attempt, or None. Pure: the same ad and attempt always decide alike.

    ``rate`` is applied per attempt through a hash of (ad id, attempt), so a 0.5 rate fails about half of
    all attempts and a retried ad may succeed later, as with a real flaky dependency.
    """
    if settings.rate <= 0:
        return None
    if settings.match and not re.search(settings.match, title):
        return None
    if settings.rate < 1:
        digest = hashlib.sha256(f"{ad_id}:{attempt}".encode()).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 >= settings.rate:
            return None
    return Fault(settings.mode)
