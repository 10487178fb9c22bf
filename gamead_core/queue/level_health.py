"""Which priority levels a worker cannot read, and when to try each again.

A level that cannot be read (its consumer was deleted, its pull is refused) never blocks the others: the
puller leaves it out and tries it again with a doubling back-off (``LEVEL_BACKOFF`` … ``LEVEL_BACKOFF_CAP``
seconds), logging once when it fails and once when it recovers. No I/O: the puller reports, this decides.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from gamead_core import names

log = logging.getLogger("gamead_core.queue.pull")

#: First and largest back-off (seconds) before a failing level is tried again.
LEVEL_BACKOFF = 0.5
LEVEL_BACKOFF_CAP = 5.0


@dataclass
class _Health:
    failing: bool = False
    reason: str = ""
    in_pull: bool = False  # the failure was the pull itself: only a pull answered normally clears it
    backoff: float = LEVEL_BACKOFF
    retry_at: float = 0.0  # monotonic


class LevelHealth:
    """The state of every level (:data:`gamead_core.names.LEVELS`): failing or not, why, and its back-off."""

    def __init__(self) -> None:
        self._health: dict[int, _Health] = {lvl: _Health() for lvl in names.LEVELS}

    def readable(self, level: int) -> bool:
        """False while ``level`` is failing and its back-off has not passed."""
        health = self._health[level]
        return not health.failing or time.monotonic() >= health.retry_at

    def failing_levels(self) -> list[int]:
        """The levels failing now, most urgent first."""
        return [lvl for lvl, h in self._health.items() if h.failing]

    def failed(self, level: int, reason: str, *, in_pull: bool = False) -> None:
        """``level`` could not be read (``reason``, logged when new); ``in_pull``: its pull itself failed."""
        health = self._health[level]
        health.in_pull = in_pull
        if not health.failing or health.reason != reason:
            log.warning("priority %d cannot be read (%s); serving the other levels, retrying it with back-off",
                        level, reason, extra={"priority": level})
            health.backoff = LEVEL_BACKOFF
        else:
            health.backoff = min(LEVEL_BACKOFF_CAP, health.backoff * 2)
        health.failing, health.reason = True, reason
        health.retry_at = time.monotonic() + health.backoff

    def ok(self, level: int, *, by_pull: bool = False) -> None:
        """``level`` was read; a failure of its pull is cleared only ``by_pull`` (a pull answered normally)."""
        health = self._health[level]
        if health.failing and (by_pull or not health.in_pull):
            log.info("priority %d can be read again", level, extra={"priority": level})
            self._health[level] = _Health()
