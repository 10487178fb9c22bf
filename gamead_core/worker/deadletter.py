"""Dead-lettering one ad: copy it into the DLQ first, then mark its record ``dead``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gamead_core.models import MAX_ERROR_MESSAGE, AdError, AdRecord, AdStatus, DlqEntry, clip_error, clip_text, utcnow
from gamead_core.queue.dlq import DeadLetters
from gamead_core.store.ads import AdStore
from gamead_core.telemetry.tracing import current_traceparent


def assumed_note(record: AdRecord, attempts: int) -> str:
    """What a DLQ entry's message adds when some of ``record``'s ``attempts`` were assumed, not counted (its
    record was lost and created again from its work message: ``attemptsAssumed``, review31 R3), else "". Pure."""
    assumed = min(record.attempts_assumed or 0, attempts)
    if not assumed:
        return ""
    return (f" [at least {attempts - assumed} attempt(s): its record was lost and created again from its work "
            f"message, {assumed} of the {attempts} counted are assumed]")


async def dead_letter(
    store: AdStore, dlq: DeadLetters, record: AdRecord, error: AdError, attempts: int, *,
    source_seq: int | None, worker_id: str | None, owns: Callable[[AdRecord], bool] | None = None,
    dead_at: datetime | None = None,
) -> bool:
    """Put ``record`` into the DLQ and mark it ``dead``. Returns True when this call made the ad dead.

    Copy first: a crash in between leaves the ad in both places, and the next delivery finds the record
    still alive and repeats this (the DLQ keeps one entry per ad). ``owns(current record)`` says whether
    the caller still owns the ad (e.g. its delivery is the one the record names); when it does not, or the
    ad is final already, the record is left alone and the copy just made is taken back unless the ad is
    ``dead`` (so a completed ad never has a DLQ entry). ``dead_at`` (default now): when it died; a caller that
    retries this call (the storage pause) passes one clock reading for all its tries, and a try that finds the
    record dead at that very ``dead_at`` with ``error`` returns True: an earlier try's write landed though its
    answer was lost. (The error alone is no proof: a crashed ad's error is the reaper's, the same for every
    caller.) Raises :class:`~gamead_core.full_stores.DlqFull` (nothing written), QueueFull, QueueUnavailable.
    """
    now = dead_at or utcnow()
    note = assumed_note(record, attempts)
    error_class, message = clip_error(error.error_class, error.message)  # what an export must import again
    if note:
        message = clip_text(message, MAX_ERROR_MESSAGE - len(note)) + note
    entry = DlqEntry(
        ad_id=record.id,
        title=record.ad.title,
        priority=record.priority,
        attempts=attempts,
        error_class=error_class,
        error_message=message,
        retryable=error.retryable,
        first_failure_at=record.first_failure_at or error.at or now,
        last_failure_at=error.at or now,
        dead_at=now,
        worker_id=worker_id,
        traceparent=current_traceparent(),
        submitted_at=record.submitted_at,
        ad=record.ad,
        source_seq=source_seq,
        replays=record.replays or None,  # a repeat death: its attempts count since replayed_at
        replayed_at=record.replayed_at if record.replays else None,
        replay_of=record.replay_of,
    )
    seq, _ = await dlq.add(entry)

    def dead(rec: AdRecord) -> AdRecord | None:
        if rec.status.terminal or (owns is not None and not owns(rec)):
            return None
        return rec.model_copy(update={
            "status": AdStatus.DEAD, "error": error, "attempts": max(rec.attempts, attempts),
            "completed_at": now, "retry_at": None, "dead_letter_error": None,
            "first_failure_at": rec.first_failure_at or error.at,
        })

    if await store.mutate(record.id, dead) is not None:
        return True
    now_is = (await store.get(record.id, consistent=True)).record  # a replica's copy may lag (attack40b F2)
    if now_is.status == AdStatus.DEAD:  # at our ``dead_at`` with our error: an earlier try's write landed unseen
        return dead_at is not None and now_is.completed_at == dead_at and now_is.error == error
    await dlq.delete(entry.model_copy(update={"seq": seq}))
    return False
