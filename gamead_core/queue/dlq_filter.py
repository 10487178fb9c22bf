"""Which DLQ entries an operator means (:class:`DlqFilter`) and how much one scan of the DLQ may read
(:class:`ScanBudget`): the pure parts of :mod:`gamead_core.queue.dlq`, which re-exports both."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gamead_core.dlq_pattern import compile_pattern
from gamead_core.models import DlqEntry
from gamead_core.times import as_utc

#: A ``message`` search of at most this many RE2 steps runs on the caller's thread; a costlier one is run in a
#: thread (:meth:`DlqFilter.off_loop`). A search's worst case is the pattern's program size times the text's length
#: in steps: RE2's DFA, when it runs out of its memory (``dlq_pattern.PATTERN_MAX_MEM``), falls back to the NFA,
#: which walks the program once per character. attack38b F2: ``.{1,500}ZZ`` (4,505 instructions) searched a
#: 4,000-character message in 0.1-0.52 s, ~6-29 ns a step; 500,000 steps is ≤ ~15 ms at that rate.
INLINE_STEPS = 500_000


@dataclass(frozen=True)
class DlqFilter:
    """Which entries an operator means. Every field narrows; none means everything.

    ``message`` is an RE2 pattern searched in the error message; an invalid one raises ValueError here.
    ``since``/``until`` must be aware datetimes (the API reads them through ``gamead_core.times``).
    """

    ids: frozenset[str] | None = None
    error_class: str | None = None
    message: str | None = None  #: RE2 regex searched in the error message
    priority: int | None = None
    since: datetime | None = None  #: dead at or after
    until: datetime | None = None  #: dead before
    _pattern: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.message is not None:
            object.__setattr__(self, "_pattern", compile_pattern(self.message))

    def wire(self) -> dict[str, Any]:
        """The filter as camelCase JSON (ids aside), e.g. to keep it in a job document."""
        raw = {"errorClass": self.error_class, "message": self.message, "priority": self.priority,
               "since": self.since.isoformat() if self.since else None,
               "until": self.until.isoformat() if self.until else None}
        return {k: v for k, v in raw.items() if v is not None}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> DlqFilter:
        """Inverse of :meth:`wire` (times read by the rule of ``gamead_core.times``)."""
        since, until = data.get("since"), data.get("until")
        return cls(error_class=data.get("errorClass"), message=data.get("message"), priority=data.get("priority"),
                   since=as_utc(datetime.fromisoformat(since)) if since else None,
                   until=as_utc(datetime.fromisoformat(until)) if until else None)

    @property
    def active(self) -> bool:
        """True if the filter narrows anything (False: every entry matches)."""
        return self.ids is not None or bool(self.wire())

    def off_loop(self, entry: DlqEntry) -> bool:
        """True when matching ``entry`` may search more than :data:`INLINE_STEPS` RE2 steps (its ``message``
        pattern's program size × the entry's error message length): run :meth:`matches` in a thread then
        (google-re2 releases the GIL while it searches), so no pattern a client sends holds the event loop. Pure."""
        return self._pattern is not None and self._pattern.programsize * len(entry.error_message) > INLINE_STEPS

    def matches(self, entry: DlqEntry) -> bool:
        if self.ids is not None and entry.ad_id not in self.ids:
            return False
        if self.error_class is not None and entry.error_class != self.error_class:
            return False
        if self._pattern is not None and not self._pattern.search(entry.error_message):
            return False
        if self.priority is not None and entry.priority != self.priority:
            return False
        if self.since is not None and entry.dead_at < self.since:
            return False
        return not (self.until is not None and entry.dead_at >= self.until)


@dataclass
class ScanBudget:
    """How much one scan may read: ``entries`` messages and ``seconds`` of wall time (None = unbounded).
    After the scan, ``scanned`` says how many it read, ``exhausted`` whether it stopped early and ``stopped_by``
    which bound stopped it (``"entries"`` or ``"seconds"``; None while not exhausted)."""

    entries: int | None = None
    seconds: float | None = None
    scanned: int = 0
    exhausted: bool = False
    stopped_by: str | None = None
    last_seq: int | None = None  #: stream sequence of the last entry read
    _started: float = field(default_factory=time.monotonic, repr=False)

    def spend(self) -> bool:
        """Count one entry read; False (and ``exhausted``) once the budget is spent."""
        self.scanned += 1
        if self.entries is not None and self.scanned >= self.entries:
            self.exhausted, self.stopped_by = True, "entries"
        elif self.seconds is not None and time.monotonic() - self._started >= self.seconds:
            self.exhausted, self.stopped_by = True, "seconds"
        return not self.exhausted


__all__ = ["INLINE_STEPS", "DlqFilter", "ScanBudget"]
