"""Which long polls a pull step puts back when the ads it took are more than the worker has room for (pure).

churn51: two busy workers at start-up (no pace timed: no prefetch buffer) have five long polls each (one per level)
for four slots. The long polls bring five ads; the pull took them and put all five long polls back at once, then the
start step handed the worst ad back (``nak``): it landed at once in one of those fresh long polls (the other worker's
or its own), just as full, and came back: one ad handed back 4 times between two workers at start-up
(tests/integration/test_handback_churn_two.py). The "no room" rule (:attr:`~gamead_core.queue.long_poll.LongPolls.full`)
only covers long polls put back *after* a hand-back.

churn52: that was not enough. A step that took no more than it asked for put every long poll back, however little
room it had left: a worker with room for two more ads kept five long polls live (two still waiting, three put back),
and those five could bring five ads; the start step handed the surplus back, into a long poll of the other busy
worker (or its own) placed the same way, and one ad of the first window went back and forth 4 times (2 of ~25 runs).
A long poll at nats-server cannot be taken back: the only bound is at placing. Now a step places new long polls only
for the room it has left beyond the long polls still live (``room - live``), the most urgent levels first; the levels
it leaves without one (:attr:`~gamead_core.queue.long_poll.LongPolls.short`) are covered by the head reads, as the
levels it handed ads back from are (a wait with slots busy looks again within ``BUSY_LOOK``, ending the quiet spell
once a level has been short that long; a step whose long polls brought an ad less urgent than a short level, or
any ad once the quiet spell is older than an aging step, asks the view for what beats it, :mod:`.pull`). A step
with room for every long poll, or none to count (a pull against the buffer's bar, a wait with every slot free: idle
workers cost nothing and see an arriving ad at once), places them all, as before."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")


def to_place(keys: list[K], room: int | None, live: int = 0) -> list[K]:
    """The long polls (``keys``, each without a live long poll, most urgent level first) a step puts back: as many as
    ``room`` (the ads the worker can still take after this step's: its pull's ``want`` less what it took) leaves
    beyond the ``live`` long polls still waiting at the server, none below 0; all of them when ``room`` is None
    (no bound: a pull against the buffer's bar, an idle worker's wait)."""
    return keys if room is None else keys[:max(0, room - live)]
