"""Which ``refused: 401/403`` lines an API node logs, bounded per client and overall (attack28a F6, review28 A3, A5).

A flood of wrong tokens from thousands of addresses (an IPv6 /64 has 2^64 of them) must not flood the log: each
kind (status and client key: an address, an IPv6 /64) is logged at most once every :attr:`RefusalLog.every`
seconds, and all kinds together at most :attr:`RefusalLog.most` lines in that time. Every line left out (and every
429 of a client over its failed-authentication limit, which has no line of its own) is counted into one summary,
due ``every`` seconds after the first line it counts: the caller asks :meth:`RefusalLog.summary` at its next line
and from a timer, so a burst that stops is summarised too. Pure (the caller passes the time) and bounded: at most
``max_kinds`` kinds and ``max_kinds`` clients' counts are kept, whatever the number of addresses.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import NamedTuple

from gamead_core.log_throttle import Throttle


class Summary(NamedTuple):
    """The lines left out since the last summary: ``count`` in all, ``by_status`` (``{401: n, 429: m}``), over
    ``seconds``, from ``clients`` client keys (``clients_more``: more than were counted apart), the most from
    ``top`` (``top_count`` of them); ``level``: the highest level left out (a 403 is a WARNING)."""

    count: int
    by_status: dict[int, int]
    seconds: float
    clients: int
    clients_more: bool
    top: str
    top_count: int
    level: int

    def text(self) -> str:
        """``refusals not logged: 2990 in the last 5 s (401: 2900, 429: 90) from 3000 clients, the most from
        2001:db8::/64 (2990)``."""
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(self.by_status.items()))
        clients = f"{'over ' if self.clients_more else ''}{self.clients} client{'s' if self.clients != 1 else ''}"
        return (f"refusals not logged: {self.count} in the last {self.seconds:.0f} s ({statuses}) from {clients}, "
                f"the most from {self.top} ({self.top_count})")


class RefusalLog:
    """The bookkeeping of refusal lines (see the module docstring). ``every``: seconds of one window (per kind and
    overall); ``most``: lines of all kinds per window; ``max_kinds``: kinds and clients remembered."""

    def __init__(self, every: float = 5.0, most: int = 20, max_kinds: int = 4096) -> None:
        self.every = every
        self.most = most
        self._max = max_kinds
        self._kinds = Throttle(every, max_kinds)  # one line per kind per window, the least recent kinds forgotten
        self._window = float("-inf")  # when the current overall window began
        self._in_window = 0  # lines logged in it
        self._since: float | None = None  # the first line left out since the last summary; None: none pending
        self._by_status: Counter[int] = Counter()
        self._by_client: dict[str, int] = {}
        self._clients_more = False
        self._level = logging.NOTSET

    def allow(self, client: str, status: int, now: float, level: int = logging.INFO) -> bool:
        """True to log this line (``client``: the client key; ``now``: monotonic seconds); False when it is left
        out (then it is counted for the summary)."""
        if now - self._window >= self.every:
            self._window, self._in_window = now, 0
        if self._in_window >= self.most or self._kinds.allow(f"{status} {client}", now) is None:
            self.left_out(client, status, now, level)
            return False
        self._in_window += 1
        return True

    def left_out(self, client: str, status: int, now: float, level: int = logging.INFO) -> None:
        """Count one refusal that gets no line of its own into the next summary."""
        if self._since is None:
            self._since = now
        self._by_status[status] += 1
        if client in self._by_client:
            self._by_client[client] += 1
        elif len(self._by_client) < self._max:
            self._by_client[client] = 1
        else:
            self._clients_more = True
        self._level = max(self._level, level)

    def due_in(self, now: float) -> float | None:
        """Seconds until the pending summary is due (0 when it is), None when nothing is pending."""
        if self._since is None:
            return None
        return max(0.0, self._since + self.every - now)

    def summary(self, now: float) -> Summary | None:
        """The summary when one is due (then the count starts again), else None."""
        if self._since is None or now - self._since < self.every:
            return None
        top = max(self._by_client, key=self._by_client.__getitem__, default="?")
        out = Summary(sum(self._by_status.values()), dict(self._by_status), now - self._since,
                      len(self._by_client), self._clients_more, top, self._by_client.get(top, 0), self._level)
        self._since, self._by_status, self._by_client = None, Counter(), {}
        self._clients_more, self._level = False, logging.NOTSET
        return out
