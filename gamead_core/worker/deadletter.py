"""Dead-lettering one ad: copy it into the DLQ first, then mark its record ``dead``."""

from __future__ import annotations

from gamead_core.models import AdError, AdRecord, AdStatus, DlqEntry, utcnow
from gamead_core.queue.dlq import DeadLetters
from gamead_core.store.ads import AdStore



async def dead_letter(
    store: AdStore, dlq: DeadLetters, record: AdRecord, error: AdError, attempts: int, *,
    source_seq: int | None, worker_id: str | None,
) -> None:
    """Put ``record`` into the DLQ and mark it ``dead`` (copy first: a crash in between leaves it in both
    places, and the next attempt finds the record terminal)."""
    now = utcnow()
    entry = DlqEntry(
        id=record.id,
        ad_id=record.id,
        title=record.ad.title,
        priority=record.priority,
        attempts=attempts,
        error_class=error.error_class,
        error_message=error.message,
        retryable=error.retryable,
        first_failure_at=record.first_failure_at or error.at or now,
        last_failure_at=error.at or now,
        dead_at=now,
        worker_id=worker_id,
        submitted_at=record.submitted_at,
        ad=record.ad,
        source_seq=source_seq,
    )
    await dlq.add(entry)

    def dead(rec: AdRecord) -> AdRecord | None:
        if rec.status.terminal:
            return None
        return rec.model_copy(update={
            "status": AdStatus.DEAD, "error": error, "attempts": max(rec.attempts, attempts),
            "completed_at": now, "retry_at": None,
            "first_failure_at": rec.first_failure_at or error.at,
        })

    await store.mutate(record.id, dead)
