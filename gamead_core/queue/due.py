"""Seeing due redeliveries in a level (the second kind of waiting ad of :mod:`gamead_core.queue.pull`).

JetStream does not say when a ``nak``'ed message is due, and probing by pulling would spend a delivery, so
:class:`DueProbe` reads the level's oldest *unacknowledged* messages (from the consumer's ack floor, at most
``DUE_PROBE`` of them, skipping the worker's own) and asks ``waiting_since`` since when each has been due.
Answers are cached: an ad in a worker's hands for ``BUSY_TTL`` seconds, a retry not yet due until it is, and a
level is looked at no more than once per ``DUE_REFRESH`` seconds (its finding reused meanwhile, the wait
growing with the clock). With ``queue.partitions`` > 1 each (level, partition) is probed on its own (its
stream's sequences; a cached verdict is keyed by partition and sequence).

An ad the worker itself handed back for want of room (:mod:`gamead_core.worker.handback`) is ``queued`` with no
``retryAt``, as one another worker holds unstarted, so its record cannot tell; the worker remembers it
(``handed``), and the probe counts it due from its first publish (the message's time stamp) unless its record says
another worker runs it: when a slot frees, the worker pulls it in aging order, without taking it back first
(attack32b F1: before, a delayed hand-back won by whichever delay ended first).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass
from typing import Protocol

from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.queue.depth import LevelDepth, peek_next

#: Most unacknowledged messages per level the view looks at for due redeliveries.
DUE_PROBE = 4
#: A level's due redeliveries are looked for at most this often (seconds); in between, the last finding
#: is reused (its wait growing with the clock): a few reads per level per second, whatever the load.
DUE_REFRESH = 1.0
#: How long "this ad is in a worker's hands" is believed before the record is read again.
BUSY_TTL = 1.0

#: ``own()``: the (stream, stream sequence) of every delivery the worker holds (never due).
#: ``waiting_since(ad_id, stream_seq, published_epoch)``: when (epoch s) a delivered, unacknowledged ad is
#: or was due for redelivery (possibly ahead: a retry whose backoff runs), or None while it is in a worker's
#: hands (see gamead_core.worker.budget.waiting_since); the last argument says this worker handed it back.
WaitingSince = Callable[[str, int, float, bool], Awaitable[float | None]]


class HandedBack(Protocol):
    """A worker's hand-backs as the puller sees them (:class:`~gamead_core.worker.handback.HandBacks`): ``full``,
    the (level, partition) it had no room for (no long poll is put back there); ``handed()``, the (stream, stream
    seq) of the ads it handed back lately."""

    full: set[tuple[int, int]]

    def handed(self) -> Container[tuple[str, int]]: ...


@dataclass(frozen=True)
class _Verdict:
    due_since: float | None  # epoch, when due now
    until: float  # monotonic: believe it until then


class DueProbe:
    """Due redeliveries per level: ``count(level, depth, now)`` → (how many are due, the longest wait in s)."""

    def __init__(self, js: JetStreamContext, waiting_since: WaitingSince,
                 own: Callable[[], Container[tuple[str, int]]],
                 handed: Callable[[], Container[tuple[str, int]]] | None = None) -> None:
        self._js = js
        self._waiting_since = waiting_since
        self._own = own
        self._handed = handed or (lambda: ())  #: the ads this worker handed back: due from their publish
        self._verdicts: dict[tuple[int, int], _Verdict] = {}  # (partition, stream seq) → verdict
        # (level, partition) → (monotonic at, due, oldest due epoch)
        self._seen: dict[tuple[int, int], tuple[float, int, float]] = {}

    async def count(self, level: int, d: LevelDepth, now: float, partition: int = 0) -> tuple[int, float]:
        """Due ads of ``level`` in work-stream ``partition`` and the longest wait (seconds), read at most once
        per ``DUE_REFRESH``."""
        mono = time.monotonic()
        seen = self._seen.get((level, partition))
        if seen is None or mono - seen[0] >= DUE_REFRESH:
            due, due_age = await self._due(level, d, now, partition)
            self._seen[(level, partition)] = (mono, due, now - due_age)
            return due, due_age
        return seen[1], (now - seen[2]) if seen[1] else 0.0

    def taken(self, level: int, n: int, *, drained: bool, partition: int = 0) -> None:
        """A pull of ``level`` in ``partition`` took ``n`` due ads; ``drained``: it answered short, nothing more
        waits."""
        if (level, partition) not in self._seen:
            return
        at, due, since = self._seen[(level, partition)]
        if drained:
            self._seen[(level, partition)] = (at, 0, 0.0)
        elif n:
            self._seen[(level, partition)] = (at, max(0, due - n), since)

    def forget(self, stream_seq: int, partition: int = 0) -> None:
        """The message at ``stream_seq`` of ``partition``'s stream was pulled: its cached verdict is stale."""
        self._verdicts.pop((partition, stream_seq), None)

    async def _due(self, level: int, d: LevelDepth, now: float, partition: int = 0) -> tuple[int, float]:
        """How many of the level's oldest unacknowledged ads are due for redelivery, and the longest wait."""
        own, handed = self._own(), self._handed()
        mono = time.monotonic()
        due, longest, seq, looked, reads = 0, 0.0, d.ack_floor, 0, 0
        while looked < DUE_PROBE and seq < d.delivered_seq and reads < 4 * DUE_PROBE:
            reads += 1
            raw = await peek_next(self._js, names.work_stream(partition), names.level_subject(level, partition),
                                  seq)  # body never parsed
            if raw is None:
                break
            seq = raw.seq or 0
            if not seq or seq > d.delivered_seq:
                break
            if (names.work_stream(partition), seq) in own:
                continue
            looked += 1
            verdict = self._verdicts.get((partition, seq))
            if verdict is None or mono >= verdict.until:
                ad_id = (raw.headers or {}).get(names.HDR_AD_ID, "")
                published = raw.time.timestamp() if raw.time is not None else now
                mine = (names.work_stream(partition), seq) in handed  # handed back by this worker: due from publish
                since = await self._waiting_since(ad_id, seq, published, mine) if ad_id else None
                if since is None:  # in a worker's hands: look again a little later
                    verdict = _Verdict(None, mono + BUSY_TTL)
                elif since > now:  # a retry whose backoff runs: not due before then
                    verdict = _Verdict(None, mono + (since - now))
                else:  # due now: not cached, a pull takes it
                    verdict = _Verdict(since, mono)
                self._verdicts[(partition, seq)] = verdict
            if verdict.due_since is not None:
                due += 1
                longest = max(longest, now - verdict.due_since)
        if len(self._verdicts) > 4096:
            self._verdicts = {s: v for s, v in self._verdicts.items() if v.until > mono}
        return due, longest
