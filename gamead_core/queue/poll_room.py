"""Which long polls a pull step puts back when the ads it took are more than the worker has room for (pure).

churn51: two busy workers at start-up (no pace timed: no prefetch buffer) have five long polls each (one per level)
for four slots. The long polls bring five ads; the pull took them and put all five long polls back at once, then the
start step handed the worst ad back (``nak``): it landed at once in one of those fresh long polls (the other worker's
or its own), just as full, and came back: one ad handed back 4 times between two workers at start-up
(tests/integration/test_handback_churn_two.py). The "no room" rule (:attr:`~gamead_core.queue.long_poll.LongPolls.full`)
only covers long polls put back *after* a hand-back.

Now a step that took more ads than its pull asked for (``want``: the worker's free slots and what its prefetch buffer
may still hold, so its start step hands the rest back) puts no long poll back: a handed-back ad waits for a worker
with room, or in the queue, where the views count it due from its first publish. A step that took no more than it
asked for puts them all back, as before (its next free slot must see the next urgent ad: ``bench_aging.py``). The
levels left without one get it back at the worker's next pull that brings nothing from a long poll, or its next wait
for work (:meth:`~gamead_core.queue.long_poll.LongPolls.place`, no limit); until then a worker out of a quiet spell
reads their heads, and one in a spell pulls no noted backlog less urgent than an unwatched level blind
(:mod:`gamead_core.queue.pull`)."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")


def to_place(keys: list[K], room: int | None) -> list[K]:
    """The long polls (``keys``, each without a live long poll) a step puts back: all of them unless ``room`` (the ads
    the worker can still take after this step's: its pull's ``want`` less what it took; None: not known, a pull against
    the buffer's bar, an empty look, a wait) is below 0, a hand-back to come: then none."""
    return [] if room is not None and room < 0 else keys
