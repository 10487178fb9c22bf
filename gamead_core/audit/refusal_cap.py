"""The bound on refusal records of one API node, all callers together (attack31b F8). Pure: the caller passes the
time (monotonic seconds); no I/O.

Why: refusals are throttled per caller (:class:`~gamead_core.audit.model.RefusalThrottle`,
``audit.refusals_per_minute``), but a caller is its token or, in open mode, its address: one process rotating its source address over 127.0.0.0/8
(or a trusted peer's ``X-Forwarded-For``) got one record per refused request, 700-1,600 a second, and pushed the whole
trail (``audit.max_msgs``, ``discard: old``) out in minutes. So all callers together get at most ``most`` refusal
records per window of ``every`` seconds (``audit.node_refusals`` per ``audit.node_refusals_window``); the refusals past
it are counted, and once the window is over one summary record (action ``refusals_suppressed``) says how many, of
which codes, from how many callers and which one the most. At most ``most + 1`` refusal records per window, whatever
the number of addresses; memory is bounded by ``max_callers``.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

#: the callers (and codes) counted apart in one summary; more are counted in ``callersMore`` (and ``other``)
MAX_CALLERS = 4096
MAX_CODES = 32


class Caller(NamedTuple):
    """Who was refused: the token's name (or ``anonymous``), its role, the client address."""

    actor: str
    role: str | None
    client: str | None


class Suppressed(NamedTuple):
    """The refusals one window left unrecorded: ``count`` in all, ``by_code``, over ``seconds`` (from the first one
    left out to now), from ``callers`` callers (``callers_more``: more than were counted apart), the most from
    ``top`` (``top_count`` of them); ``most`` and ``every``: the bound in force."""

    count: int
    by_code: dict[str, int]
    seconds: float
    callers: int
    callers_more: bool
    top: Caller
    top_count: int
    most: int
    every: float

    def message(self) -> str:
        """``1940 refusals not recorded one by one in the last 58 s: over audit.node_refusals (60 per 60 s) of this
        API node; from 1940 callers, the most from anonymous at 127.1.7.207 (1)``."""
        callers = f"{'over ' if self.callers_more else ''}{self.callers} caller{'s' if self.callers != 1 else ''}"
        where = f" at {self.top.client}" if self.top.client else ""
        return (f"{self.count} refusal{'s' if self.count != 1 else ''} not recorded one by one in the last "
                f"{self.seconds:.0f} s: over audit.node_refusals ({self.most} per {self.every:g} s) of this API node; "
                f"from {callers}, the most from {self.top.actor}{where} ({self.top_count})")

    def details(self) -> dict[str, object]:
        """The record's ``details``: the figures of :meth:`message`, for a machine."""
        return {"refusals": self.count, "byCode": self.by_code, "seconds": round(self.seconds, 3),
                "callers": self.callers, "callersMore": self.callers_more, "topRefusals": self.top_count,
                "limit": self.most, "window": self.every}


class RefusalCap:
    """At most ``most`` refusal records per ``every`` seconds on this node, the rest counted for one summary per window
    (see the module docstring). A window begins with the first refusal after the previous one ended."""

    def __init__(self, most: int, every: float, *, max_callers: int = MAX_CALLERS) -> None:
        self.most = most
        self.every = every
        self._max = max_callers
        self._window = float("-inf")  # when the current window began
        self._in_window = 0  # refusal records written in it
        self._since: float | None = None  # the first refusal left out since the last summary; None: none pending
        self._by_code: Counter[str] = Counter()
        self._by_caller: dict[Caller, int] = {}
        self._callers_more = False

    def allow(self, caller: Caller, code: str | None, now: float, count: int = 1) -> bool:
        """True to write this refusal's record; False when the window's records are spent: then ``count`` refusals
        (this one and those its caller's own throttle had left out before it) are counted for the summary. Ask
        :meth:`summary` first: a window does not begin while the previous one's summary is pending."""
        if now - self._window >= self.every and self._since is None:
            self._window, self._in_window = now, 0
        if self._in_window < self.most and now - self._window < self.every:
            self._in_window += 1
            return True
        if self._since is None:
            self._since = now
        key = code or "unknown"
        self._by_code[key if key in self._by_code or len(self._by_code) < MAX_CODES else "other"] += count
        if caller in self._by_caller:
            self._by_caller[caller] += count
        elif len(self._by_caller) < self._max:
            self._by_caller[caller] = count
        else:
            self._callers_more = True
        return False

    def due_in(self, now: float) -> float | None:
        """Seconds until the pending summary is due (0 when it is), None when nothing is pending."""
        if self._since is None:
            return None
        return max(0.0, self._window + self.every - now)

    def summary(self, now: float, force: bool = False) -> Suppressed | None:
        """The summary of the refusals left out, once their window is over (``force``: at once, at shutdown; then a
        new window may begin), else None."""
        if self._since is None or (now - self._window < self.every and not force):
            return None
        top = max(self._by_caller, key=self._by_caller.__getitem__, default=Caller("anonymous", None, None))
        out = Suppressed(sum(self._by_code.values()), dict(self._by_code), now - self._since, len(self._by_caller),
                         self._callers_more, top, self._by_caller.get(top, 0), self.most, self.every)
        self._since, self._by_code, self._by_caller, self._callers_more = None, Counter(), {}, False
        return out
