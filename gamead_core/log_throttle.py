"""At most one log line per kind every few seconds, the next one saying how many were left out.

A fail-over answers thousands of requests 503 within seconds; a WARNING line for each (a reviewer counted 2,852
of 2,889 API lines in one 6 s election) buries everything else. The count per route and status is in the metrics
(``gamead_http_requests_total``); the log keeps one line per kind per :attr:`Throttle.every` seconds.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any


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


def say(throttle: Throttle, kind: str, now: float, logger: logging.Logger, level: int, line: str, *args: Any,
        extra: dict[str, Any] | None = None) -> bool:
    """Log ``line % args`` at ``level`` unless ``throttle`` leaves this line of ``kind`` out (``now``: monotonic s);
    the next one logged ends with ``(N more since the last such line)``, and carries ``left_out`` among its
    ``extra`` fields. Returns whether it was logged. The one form of every throttled line a client can make come
    at will (a refusal per request: one line per kind per ``throttle.every`` s, whatever the request rate)."""
    left_out = throttle.allow(kind, now)
    if left_out is None:
        return False
    logger.log(level, line + (f" ({left_out} more since the last such line)" if left_out else ""), *args,
               extra={**(extra or {}), "left_out": left_out})
    return True


class Outage:
    """The lines of one thing that keeps failing, each try logged (pure: the caller passes the time): the first
    failure in full; then, while it keeps failing, at most one line every ``every`` seconds saying for how long and
    how many tries; once it works again, one line saying so. A loop retrying every second through a 3-minute NATS
    stall wrote 70 identical WARNING lines to ``gamead up``'s console; now one, one a minute, and one at the end.
    Memory: three numbers."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self._since: float | None = None  # the first failure of this outage (monotonic s); None: working
        self._logged = 0.0  # when its last line was written
        self._tries = 0  # failures in this outage

    def failed(self, now: float) -> str | None:
        """A try failed at ``now``: ``""`` to log it as the first failure, ``"still failing for 65 s (12 tries)"`` to
        log it as a reminder, None to leave it out."""
        self._tries += 1
        if self._since is None:
            self._since = self._logged = now
            return ""
        if now - self._logged < self.every:
            return None
        self._logged = now
        return f"still failing for {now - self._since:.0f} s ({self._tries} tries)"

    def recovered(self, now: float) -> str | None:
        """A try worked at ``now``: ``"works again after 190 s (70 failed tries)"`` when it ends an outage, else
        None."""
        if self._since is None:
            return None
        line = f"works again after {now - self._since:.0f} s ({self._tries} failed tries)"
        self._since, self._tries = None, 0
        return line


class LibraryLines(logging.Filter):
    """A handler's filter folding the repeated lines of libraries that log each try of a failing call on their own:
    a record of a logger under one of ``prefixes`` (the OpenTelemetry SDK and its exporters: a collector down made
    32 lines in 57 s, ~470 bytes each, attack39b F9) passes once per kind (logger, level and message template) every
    ``every`` seconds, the next one passed ending ``(N more since the last such line)``; every other record passes
    as it is. Memory: :class:`Throttle`'s bounded kinds."""

    def __init__(self, prefixes: tuple[str, ...] = ("opentelemetry",), every: float = 60.0) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.throttle = Throttle(every)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        left_out = self.throttle.allow(f"{record.name} {record.levelno} {record.msg}", time.monotonic())
        if left_out is None:
            return False
        if left_out:
            record.msg, record.args = f"{record.getMessage()} ({left_out} more since the last such line)", None
        return True
