"""A host clock off nats-server's, for the people who must fix it: the one threshold, the words, the log lines.

gamead corrects the offset (:mod:`gamead_core.clock`: every time it stamps or compares is nats-server's), so a
host whose NTP is off still works; but its logs' own times, its ``startedAt`` incarnation stamp and whatever else
reads the host clock (cron, TLS certificates) are off, so the offset is reported wherever an operator looks: each
node's registry entry (``clockOffsetSeconds``, ``clockErrorSeconds``), ``/v1/workers`` and ``gamead workers``,
``/v1/stats`` (the answering node's), ``gamead doctor`` (warning ``clock_offset``) and one warning in the node's
log when it passes :data:`OFFSET_LIMIT` (one more when it is back). ``offset``: nats-server's clock minus the
host's, seconds, + when the host is behind (:attr:`gamead_core.clock.ServerClock.offset`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from gamead_core.clock import CLOCK

log = logging.getLogger(__name__)

#: Seconds a host clock may differ from nats-server's before gamead reports it (the node's log, ``gamead workers``,
#: ``gamead doctor``'s ``clock_offset``): NTP keeps hosts within milliseconds; a second is a clock NTP does not keep.
OFFSET_LIMIT: Final[float] = 1.0


def past_limit(offset: float | None) -> bool:
    """True when ``offset`` (seconds; None: not measured) is more than :data:`OFFSET_LIMIT` either way. Pure."""
    return offset is not None and abs(offset) > OFFSET_LIMIT


def offset_words(offset: float) -> str:
    """``host clock 300.0 s behind nats-server's (corrected: gamead uses nats-server's time)`` (``ahead`` for a
    negative ``offset``, seconds). Pure."""
    way = "behind" if offset >= 0 else "ahead of"
    return f"host clock {abs(offset):.1f} s {way} nats-server's (corrected: gamead uses nats-server's time)"


def measured() -> tuple[float | None, float | None]:
    """This process's ``(offset, error)``, seconds rounded to the ms (None, None before its first sample)."""
    offset, error = CLOCK.offset, CLOCK.error
    return (None if offset is None else round(offset, 3)), (None if error is None else round(error, 3))


class OffsetLog:
    """Says in the node's log, once, that its host clock passed :data:`OFFSET_LIMIT`, and once that it is back
    within it (a warning, then an info line; JSON fields ``node_id``, ``clock_offset_seconds``,
    ``clock_error_seconds``, ``limit_seconds``)."""

    def __init__(self) -> None:
        self.past = False

    def note(self, node_id: str | None) -> None:
        """After a sample: log when the offset crossed the limit since the last call."""
        offset, error = measured()
        if offset is None or past_limit(offset) == self.past:
            return
        self.past = not self.past
        fields = {"node_id": node_id, "clock_offset_seconds": offset, "clock_error_seconds": error,
                  "limit_seconds": OFFSET_LIMIT}
        if self.past:
            log.warning("%s; fix this host's NTP", offset_words(offset), extra=fields)
        else:
            log.info("host clock back within %g s of nats-server's (%+.3f s)", OFFSET_LIMIT, offset, extra=fields)


async def sampled(within: float) -> bool:
    """Wait until this process has sampled nats-server's clock (its first registry heartbeat), at most ``within``
    seconds; True if it has. What judges another node's lease by its written expiry waits for it: before the first
    sample the time is the host's, and a host 1 min ahead took a live runner's job at its start (attack33a F5)."""
    deadline = time.monotonic() + within
    while CLOCK.offset is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return CLOCK.offset is not None


__all__ = ["OFFSET_LIMIT", "OffsetLog", "measured", "offset_words", "past_limit", "sampled"]
