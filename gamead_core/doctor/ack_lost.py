"""An ended ad (completed, or dead-lettered) whose message is still ack-pending under the delivery that ended it: its
``+ACK`` was lost.

A worker records ``completed`` (or, its budget spent, copies the ad into the DLQ and records ``dead``), then
acknowledges the delivery with a plain ``+ACK`` (no reply). On a 3-node cluster a SIGKILL of the stream leader loses a
few of those (chaos48 F3: 2-6 ads per kill, whichever node the worker was on): the record is final, written once, and
the message stays ack-pending until the consumer's ``ack_wait`` (30 s) runs out; JetStream then delivers it again and
a worker acknowledges it unanalysed (its record is terminal). Meanwhile the doctor said ``✗ completed_with_message``
(or ``✗ dead_with_message``) and exited 1, so a cron that pages on exit 1 paged after every fail-over.

So a ``completed_with_message`` or ``dead_with_message`` is the note ``ack_lost`` (exit 0) when all of these hold
(:func:`redelivered_by`):

* the ad has one message, and it is the one its record's ``delivery`` names (the record was ended under it);
* that message is ack-pending at its level consumer: above the consumer's ack floor and at or below the last
  stream sequence it delivered (``CONSUMER.INFO``; a work-queue stream removes a message once it is acked);
* its end (``completedAt``: when it completed or became dead, stamped on nats-server's clock:
  :mod:`gamead_core.clock`) plus the consumer's ``ack_wait`` plus :data:`MARGIN` is still ahead of the doctor's now
  (nats-server's clock too). The redelivery is due ``ack_wait`` after the delivery's last acknowledgement of progress,
  which came before the end, so ``completedAt + ack_wait`` is its latest time; :data:`MARGIN` covers the next pull of
  that level.

Past that, nothing redelivered it: the finding (``completed_with_message``, ``dead_with_message``; exit 1), with what
was due when. ``--repair`` removes the message by its sequence in both cases (if the record is still ``completed``, or
``dead``; the DLQ entry stays): nats-server terminates a deleted message's pending delivery, so nothing is redelivered
and a late ``+ACK`` is ignored.

A dead-lettering cut short is the same kind of wait (attack58). A worker dead-letters by copying the ad into the DLQ
first, then recording it ``dead``, then acknowledging (:func:`gamead_core.worker.deadletter.dead_letter`); killed
between the copy and the record, it leaves a ``queued`` or ``processing`` record beside a DLQ entry, and the next
delivery repeats the dead-lettering. The doctor said ``✗ entry_of_live_ad · invariant 3`` (exit 1, nothing for
``--repair`` to do) for the seconds that redelivery took: 3 ads of 1 doctor run right after a worker's SIGKILL at
100 ads/s, 30 % of them failing for good. So an ``entry_of_live_ad`` is the note ``dead_letter_unfinished`` while
:func:`unfinished_by` says its redelivery may still come: the ad has one message, the one its entry was dead-lettered
from (the entry's ``sourceSeq``), still ack-pending at its consumer, and the entry's ``deadAt`` + ``ack_wait`` +
:data:`MARGIN` is ahead. A replay half-way (its entry names the replayed message, acknowledged and gone) or an
imported entry never is; past the bound it is the finding, as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

from gamead_core import clock, names
from gamead_core.doctor.checks import Facts, WorkMsg
from gamead_core.doctor.model import ACK_LOST_MARGIN as MARGIN  # the one figure, also in the note's text
from gamead_core.doctor.model import Finding, Note, ReadStats
from gamead_core.doctor.verdict import Look, add
from gamead_core.errors import GameadError
from gamead_core.models import AdStatus
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.partitions import partition_of
from gamead_core.times import clock_utc
from gamead_core.worker.budget import parse_delivery

log = logging.getLogger(__name__)

#: What a record may say of an ad whose ack was lost: both end the delivery, and a redelivery is acknowledged unrun
ENDED = (AdStatus.COMPLETED, AdStatus.DEAD)
#: The finding of each (what the note stands in for while the redelivery may come), and a dead-lettering cut short's
FINDINGS = ("completed_with_message", "dead_with_message", "entry_of_live_ad")
#: The note each finding is while its redelivery may come
NOTE_OF = {"completed_with_message": "ack_lost", "dead_with_message": "ack_lost",
           "entry_of_live_ad": "dead_letter_unfinished"}


@dataclass(frozen=True, slots=True)
class Floor:
    """What a level consumer says of its deliveries: its ack floor and the last stream sequence it delivered
    (stream sequences), and its ``ack_wait`` (seconds)."""

    ack_floor: int
    delivered: int
    ack_wait: float

    def pending(self, seq: int) -> bool:
        """Whether stream sequence ``seq`` (still in the work stream) is delivered and not acknowledged."""
        return self.ack_floor < seq <= self.delivered


def redelivered_by(facts: Facts | None, messages: Sequence[WorkMsg], floor: Floor | None) -> float | None:
    """When JetStream redelivers an ended ad's message (completed, or dead) whose ack was lost (epoch seconds:
    ``completedAt`` + the consumer's ``ack_wait``), or None when the ad is not one (module doc). Pure."""
    if facts is None or facts.status not in ENDED or facts.completed_at is None or floor is None:
        return None
    if len(messages) != 1 or messages[0].seq != parse_delivery(facts.delivery)[0]:
        return None
    if not floor.pending(messages[0].seq):
        return None
    return facts.completed_at.timestamp() + floor.ack_wait


def unfinished_by(facts: Facts | None, messages: Sequence[WorkMsg], floor: Floor | None,
                  entry: tuple[int | None, float] | None) -> float | None:
    """When JetStream redelivers the message of a live ad (queued, processing) whose DLQ entry (``entry``: its
    ``sourceSeq`` and ``deadAt``, epoch s) was dead-lettered from that very message by a worker that died before
    recording it ``dead`` (``deadAt`` + the consumer's ``ack_wait``), or None when the ad is not one. Pure."""
    if facts is None or facts.status.terminal or entry is None or floor is None or len(messages) != 1:
        return None
    if entry[0] != messages[0].seq or not floor.pending(messages[0].seq):
        return None
    return entry[1] + floor.ack_wait


def young(by: float, now: float) -> bool:
    """Whether a redelivery due at ``by`` may still be on its way at ``now`` (:data:`MARGIN`). Pure."""
    return now <= by + MARGIN


def note_text(by: float, now: float, code: str = "completed_with_message") -> str:
    """The note's detail for one ad with finding ``code``. Pure."""
    if code == "entry_of_live_ad":
        return (f"its worker died between its DLQ entry and its record: JetStream redelivers it by "
                f"{clock_utc(by, now)} and a worker ends it (dead again, or completed)")
    return (f"ack lost: JetStream redelivers it by {clock_utc(by, now)} and a worker acknowledges it unanalysed "
            f"(--repair removes it now)")


def late_text(by: float, ack_wait: float, now: float, code: str = "completed_with_message") -> str:
    """The finding's detail for one ad with finding ``code`` whose redelivery is overdue. Pure."""
    if code == "entry_of_live_ad":
        return (f"its dead-lettering was cut short and nothing redelivered it: due by {clock_utc(by, now)} (its "
                f"entry's deadAt + its consumer's ack_wait, {ack_wait:g} s), {now - by:.0f} s ago; is a worker "
                f"pulling its level?")
    return (f"its acknowledgement was lost and nothing redelivered it: due by {clock_utc(by, now)} (completedAt + "
            f"its consumer's ack_wait, {ack_wait:g} s), {now - by:.0f} s ago; is a worker pulling its level?")


class AckLost:
    """The check in one doctor run's second look: the consumers' floors read once each (one ``CONSUMER.INFO``
    per level and partition of an ended ad with a message, none of those in ``infos``: the same look's reading
    of them, :meth:`gamead_core.doctor.unheld.Unheld.read_again`)."""

    def __init__(self, js: JetStreamContext, partitions: int,
                 infos: Mapping[tuple[int, int], ConsumerInfo] | None = None) -> None:
        self._js = js
        self._parts = partitions
        self._infos = infos or {}
        self._floors: dict[tuple[int, int], Floor | None] = {}

    async def floor(self, level: int, partition: int, stats: ReadStats) -> Floor | None:
        """The floor of ``level``'s consumer in work-stream ``partition``; None when it cannot be read."""
        key = (level, partition)
        if key not in self._floors:
            try:
                if (info := self._infos.get(key)) is None:
                    stats.api_calls += 1
                    with nats_boundary():
                        info = await self._js.consumer_info(names.work_stream(partition),
                                                            names.level_consumer(level, partition))
                self._floors[key] = Floor(int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0,
                                          int(info.delivered.stream_seq or 0) if info.delivered else 0,
                                          float(info.config.ack_wait or 0))
            except (GameadError, nats.errors.Error) as exc:
                log.debug("doctor: consumer of level %d, partition %d: %r", level, partition, exc)
                self._floors[key] = None
        return self._floors[key]

    async def due(self, facts: Facts | None, messages: Sequence[WorkMsg], partition: int, stats: ReadStats,
                  entry: tuple[int | None, float] | None = None) -> tuple[float, float] | None:
        """``(redelivery due, ack_wait)`` of an ended ad whose ack was lost (:func:`redelivered_by`), or with
        ``entry`` (its DLQ entry's ``sourceSeq`` and ``deadAt``) of a live ad whose dead-lettering was cut short
        (:func:`unfinished_by`); None when it is not one. One message's consumer is read; those check the rest."""
        if facts is None or len(messages) != 1:
            return None
        if (floor := await self.floor(messages[0].level, partition, stats)) is None:
            return None
        by = unfinished_by(facts, messages, floor, entry) if entry else redelivered_by(facts, messages, floor)
        return None if by is None else (by, floor.ack_wait)

    async def judge(self, ad_id: str, look: Look, stats: ReadStats, finding: Finding, notes: Mapping[str, Note]
                    ) -> None:
        """A confirmed finding of :data:`FINDINGS` of ``ad_id`` (the second ``look``) goes into its note of
        ``notes`` (:data:`NOTE_OF`) while its redelivery may still come (:func:`young`), else into ``finding``
        (with when it was due, if it was one)."""
        code, messages = finding.kind.code, look.work.get(ad_id, [])
        entry = look.entry_from.get(ad_id, (None, 0.0)) if code == "entry_of_live_ad" else None
        lost = await self.due(look.records.get(ad_id), messages, partition_of(ad_id, self._parts), stats, entry)
        now = clock.now()
        if lost is not None and young(lost[0], now):
            add(notes[NOTE_OF[code]], ad_id, note_text(lost[0], now, code))
        else:
            add(finding, ad_id, None if lost is None else late_text(lost[0], lost[1], now, code))


__all__ = ["ENDED", "FINDINGS", "MARGIN", "NOTE_OF", "AckLost", "Floor", "late_text", "note_text", "redelivered_by",
           "unfinished_by", "young"]
