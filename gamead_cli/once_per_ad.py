"""Which lines of a ``gamead dlq export`` stay: each ad once (attack27 F5). The export pages ``GET /v1/dlq`` by DLQ
sequence while a replay may delete an entry it has already written and dead-letter the ad again past its cursor:
the ad then comes back on a later page with a newer entry (a higher sequence). Pure: no I/O.
"""

from __future__ import annotations


class OncePerAd:
    """The lines of an export, one :meth:`add` per entry in the order read (DLQ order: a repeat is always newer).

    ``take_back`` (a temporary file, filtered before it replaces FILE): every line is written, and a repeat marks
    the ad's earlier line in :attr:`dropped`, so the file keeps each ad's newest entry. Without it (stdout, a pipe,
    a device: what is written cannot be taken back) a repeat is not written: the first entry stays.
    Memory: one ad id and one line number per distinct ad, so at most the DLQ's size (``dlq.max_msgs``), plus one
    line number per repeat."""

    def __init__(self, *, take_back: bool) -> None:
        self.take_back = take_back
        self.lines = 0  #: lines written
        self.dropped: set[int] = set()  #: lines (0-based) a newer entry of the same ad supersedes (take_back)
        self._line_of: dict[str, int] = {}
        self._again: set[str] = set()  #: ads met again: their entry changed during the export

    def add(self, ad_id: str) -> bool:
        """Whether to write this entry of ``ad_id`` (as line :attr:`lines`); counts it if so."""
        earlier = self._line_of.get(ad_id)
        if earlier is not None:
            self._again.add(ad_id)
            if not self.take_back:
                return False
            self.dropped.add(earlier)
        self._line_of[ad_id] = self.lines
        self.lines += 1
        return True

    @property
    def changed(self) -> int:
        """Ads met more than once: their entry changed during the export (replayed and dead again)."""
        return len(self._again)

    @property
    def kept(self) -> int:
        """Entries the output holds once :attr:`dropped` lines are gone: one per ad."""
        return len(self._line_of)
