"""At most one log line per kind every few seconds, the next one saying how many were left out.

A fail-over answers thousands of requests 503 within seconds; a WARNING line for each (a reviewer counted 2,852
of 2,889 API lines in one 6 s election) buries everything else. The count per route and status is in the metrics
(``gamead_http_requests_total``); the log keeps one line per kind per :attr:`Throttle.every` seconds.
"""

from __future__ import annotations

from collections import OrderedDict


class Throttle:
    """Which lines of a kind to log (pure: the caller passes the time). ``every``: seconds between two lines of
    one kind; ``max_kinds``: kinds remembered (the least recent is forgotten, so memory stays bounded whatever
    the keys; a forgotten kind just logs its next line)."""

    def __init__(self, every: float = 5.0, max_kinds: int = 64) -> None:
        self.every = every
        self._max = max_kinds
        self._kinds: OrderedDict[str, tuple[float, int]] = OrderedDict()  # kind → (last logged at, left out since)

    def allow(self, kind: str, now: float) -> int | None:
        """None to leave this line of ``kind`` out (it is counted); else log it, with the returned number of
        lines of ``kind`` left out since the last one logged. ``now``: monotonic seconds."""
        seen = self._kinds.get(kind)
        if seen is not None and now - seen[0] < self.every:
            self._kinds[kind] = (seen[0], seen[1] + 1)
            return None
        self._kinds[kind] = (now, 0)
        self._kinds.move_to_end(kind)
        while len(self._kinds) > self._max:
            self._kinds.popitem(last=False)
        return seen[1] if seen is not None else 0
