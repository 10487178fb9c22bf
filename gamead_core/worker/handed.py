"""The deliveries a worker handed back lately (``nak`` at once, never started), for its registry entry's
``handedBack``: the doctor counts them held (:mod:`gamead_core.doctor.unheld`).

A handed-back delivery leaves ``holding`` at once (:func:`gamead_core.worker.handback.hand_back` announces before its
``nak``), but JetStream keeps its message ack pending until a pull takes it again: with no pull waiting on its level
(every worker full, or the only one quiet) for as long as that lasts. The doctor, comparing what JetStream has ack
pending with what the workers announce, named them "a dead worker's last deliveries" while the worker was alive
(handback50: ``gamead workers quiet`` on a worker with 9 ads buffered, ``ack_pending_unheld · 9``). So a worker
announces, beside ``holding``, the stream sequences it handed back in the last :data:`HANDED_BACK_FOR` s, at most
:data:`HANDED_BACK_MOST` of them (the oldest dropped first), by ``<stream>.<consumer>`` (JetStream names hold no dot):
``"handedBack": {"GAMEAD_ADS.gamead-p3": [41, 42]}``, 3-9 bytes a sequence, ≤ ~2.3 kB (an announcement: 2-10 kB).

Why :data:`HANDED_BACK_FOR` is long enough: the doctor's second reading lists the holdings, reads the messages pending
twice 0.5 s apart and lists them again (~1-3 s, every announcement between heard); a hand-back announced before its
``nak`` stays in every entry the worker puts for :data:`HANDED_BACK_FOR` s, so any doctor run that begins within it of
the hand-back sees it. 30 s is ten times that span, and a handed-back ad under a backlog waits that long for a worker
with room (the ack_wait's default, 30 s, is how long a dead worker's delivery waits too). What it costs: a handed-back
ad another worker pulled and then died holding unannounced is named only once it is :data:`HANDED_BACK_FOR` s old.
A hand-back older than that still waiting for a pull is named (as the note says); so is every dead worker's delivery.
"""

from __future__ import annotations

from collections.abc import Iterable

from nats.aio.msg import Msg

#: Seconds a handed-back delivery stays in the worker's ``handedBack`` (see the module doc)
HANDED_BACK_FOR = 30.0
#: Most handed-back deliveries announced at once (the oldest dropped first): ≤ ~2.3 kB of the entry
HANDED_BACK_MOST = 256

Key = tuple[str, int]  #: (``<stream>.<consumer>``, stream sequence): the message JetStream keeps ack pending


class RecentHandBacks:
    """The deliveries handed back in the last :data:`HANDED_BACK_FOR` s (monotonic seconds given by the caller)."""

    def __init__(self, window: float = HANDED_BACK_FOR, most: int = HANDED_BACK_MOST) -> None:
        self._window, self._most = window, most
        self._at: dict[Key, float] = {}  #: key → when handed back; insertion order is age order
        #: :meth:`wire`'s answer until the keys change: every start step's announcement asks (69 µs for 256 keys)
        self._wire: dict[str, list[int]] | None = {}

    def note(self, msgs: Iterable[Msg], now: float) -> None:
        """Remember ``msgs`` (work deliveries) as handed back at ``now``."""
        for msg in msgs:
            meta = msg.metadata
            key = (f"{meta.stream}.{meta.consumer}", meta.sequence.stream)
            self._at.pop(key, None)
            self._at[key] = now
        self._wire = None
        self._forget(now)

    def _forget(self, now: float) -> None:
        at = self._at
        while at and (len(at) > self._most or now - next(iter(at.values())) > self._window):
            del at[next(iter(at))]
            self._wire = None

    def wire(self, now: float) -> dict[str, list[int]]:
        """``handedBack`` as of ``now``: ``<stream>.<consumer>`` → the stream sequences handed back (empty: none).
        The same dict while the keys stay the same: not to be changed by the caller."""
        self._forget(now)
        if self._wire is None:
            self._wire = {}
            for where, seq in self._at:
                self._wire.setdefault(where, []).append(seq)
        return self._wire


__all__ = ["HANDED_BACK_FOR", "HANDED_BACK_MOST", "RecentHandBacks"]
