"""The doctor's rules: pure functions from what was read to what is broken. No I/O.

For one ad the doctor knows (at most) its record, its messages in its work stream and how many DLQ entries it
has; :func:`classify` names every invariant of ARCHITECTURE.md ("Invariants") that this breaks:

=======================  ==================================================================================
record                   broken when
=======================  ==================================================================================
queued / processing      no message (``no_message``); more than one (``duplicate_messages``); a DLQ entry
                         (``entry_of_live_ad``); queued with its analysis budget spent and due, untaken, for
                         longer than ``doctor.overdue_after`` (``budget_spent``)
completed                a message (``completed_with_message``); a DLQ entry (``entry_of_completed``)
failed (purged)          a message (``failed_with_message``); a DLQ entry (``failed_with_entry``)
dead                     no DLQ entry (``dead_without_entry``); more than one (``several_entries``); a message
                         (``dead_with_message``)
missing                  a DLQ entry (``entry_without_record``). A message without a record is no fault (the
                         worker recreates the record from it): a note.
=======================  ==================================================================================

Which records need reading at all (:func:`records_to_read`): completed and failed records are written with a
per-key TTL (``Nats-TTL``, see ``gamead_core.store.retention``), so a headers-only listing of the record bucket
tells them from the others without reading them. A final record can only be broken together with a message or
a DLQ entry of its ad, and those are listed too: so the doctor reads whole records only for non-final keys and
for ads that have a message or a DLQ entry. Of each record read, the rules keep only its :class:`Facts`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from gamead_core.models import AdRecord, AdStatus
from gamead_core.worker.budget import budget_spent, waiting_since


@dataclass(frozen=True, slots=True)
class WorkMsg:
    """One message of a work stream, from its headers: stream sequence, level, ad id, publish time (epoch s)."""

    seq: int
    level: int
    ad_id: str | None
    published: float


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rules read of one ad's record, under the :class:`AdRecord` field names (so
    :func:`~gamead_core.worker.budget.budget_spent` and ``waiting_since`` take it as they take a record), and the
    KV revision it was read at (a repair's compare-and-set). Some 400 bytes, where the decoded record holds the
    ad's texts, its analysis and its error: a record at the field limits is ~15 KB as JSON and ~25 KB decoded,
    so the doctor keeps these instead (attack31b F9: 20,000 such dead records held whole took an API node from
    87 MB to 584 MB RSS, past its 512 MiB limit)."""

    id: str
    status: AdStatus
    priority: int
    attempts: int
    submitted_at: datetime
    started_at: datetime | None
    retry_at: datetime | None
    replayed_at: datetime | None
    revision: int
    completed_at: datetime | None = None  #: when it ended (nats-server's clock): :mod:`gamead_core.doctor.ack_lost`
    delivery: str | None = None  #: the delivery that last started an analysis (``"<stream seq>.<count>"``)

    @classmethod
    def of(cls, record: AdRecord, revision: int) -> Facts:
        """The facts of ``record`` read at ``revision``. Pure."""
        return cls(record.id, record.status, record.priority, record.attempts, record.submitted_at,
                   record.started_at, record.retry_at, record.replayed_at, revision, record.completed_at,
                   record.delivery)


@dataclass(frozen=True, slots=True)
class Rules:
    """The settings the rules depend on (seconds)."""

    max_attempts: int
    overdue_after: float
    ack_wait: float
    task_timeout: float


def overdue(record: AdRecord | Facts, messages: Sequence[WorkMsg], now: float, rules: Rules) -> bool:
    """True when ``record`` (budget spent) has been due for a worker for longer than ``rules.overdue_after``:
    due at its ``retryAt`` (a retry or a hand-back), when its last attempt was lost (``processing`` for longer
    than ``task_timeout + ack_wait``), or at submission."""
    published = min((m.published for m in messages), default=now)
    due = waiting_since(record, published, now, ack_wait=rules.ack_wait, task_timeout=rules.task_timeout)
    if due is None and record.status == AdStatus.QUEUED:
        due = (record.started_at or record.submitted_at).timestamp()
    return due is not None and now - due > rules.overdue_after


def classify(record: AdRecord | Facts | None, messages: Sequence[WorkMsg], entries: int, now: float,
             rules: Rules) -> list[str]:
    """The codes (``gamead_core.doctor.model.KINDS``) of every invariant one ad breaks; [] when it is healthy.

    ``record`` None: the ad has no record (a whole record or its :class:`Facts`). ``messages``: its messages in its work stream. ``entries``: how many
    DLQ entries it has."""
    out: list[str] = []
    if record is None:
        if entries:
            out.append("entry_without_record")
        return out
    status = record.status
    if status in (AdStatus.QUEUED, AdStatus.PROCESSING):
        if not messages:
            out.append("no_message")
        elif len(messages) > 1:
            out.append("duplicate_messages")
        if entries:
            out.append("entry_of_live_ad")
        if messages and budget_spent(record, rules.max_attempts) and overdue(record, messages, now, rules):
            out.append("budget_spent")
    elif status == AdStatus.COMPLETED:
        if messages:
            out.append("completed_with_message")
        if entries:
            out.append("entry_of_completed")
    elif status == AdStatus.FAILED:
        if messages:
            out.append("failed_with_message")
        if entries:
            out.append("failed_with_entry")
    elif status == AdStatus.DEAD:
        if entries == 0:
            out.append("dead_without_entry")
        elif entries > 1:
            out.append("several_entries")
        if messages:
            out.append("dead_with_message")
    return out


def records_to_read(nonfinal_keys: Iterable[str], final_keys: set[str], work_ads: Iterable[str],
                    dlq_ads: Iterable[str]) -> list[str]:
    """The ads whose whole record must be read (see the module doc): every key not marked final, and every ad
    with a message or a DLQ entry (whether its key is final, or it has no key at all). Each once, sorted."""
    wanted = set(nonfinal_keys)
    wanted.update(work_ads)
    wanted.update(dlq_ads)
    return sorted(wanted)


def unrecorded(work: Mapping[str, Sequence[WorkMsg]], records: Mapping[str, AdRecord | None]) -> list[str]:
    """Ads with a message in a work stream and no record (a note, not a fault)."""
    return sorted(ad for ad in work if ad in records and records[ad] is None)


def stranded_reading(first: int, second: int) -> int:
    """The stranded count of a level from two readings taken ``doctor.settle`` apart. One reading
    (:func:`~gamead_core.worker.mover.stranded_count`) never exceeds what was stranded when it was taken (a race
    between its calls only undercounts, regress40 F7); a stranded message stays until settled: so a level counts
    as stranded only when both readings say so, by the smaller of the two."""
    return min(first, second)


__all__ = ["Facts", "Rules", "WorkMsg", "classify", "overdue", "records_to_read", "stranded_reading", "unrecorded"]
