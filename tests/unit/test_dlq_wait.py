"""The record of an ad whose dead-lettering the full DLQ refused, and when the DLQ counts as full (attack31a F5)."""

from __future__ import annotations

from gamead_core.full_stores import dlq_full, jobs_full
from gamead_core.models import AdError, AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.stats.dlq_room import dlq_section, is_full
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.dlq_wait import DLQ_BACKOFF_CAP, DlqWait, parked
from gamead_core.worker.transitions import owner, started_record

AD = AdSubmission(title="Sky Saga", description="An RPG", genre="RPG", call_to_action="Play", duration=30)


def test_a_refused_ad_is_queued_again_charged_as_its_attempt_with_the_failure_it_dies_with_kept() -> None:
    queued = AdRecord(id="01m8yqs0wfwycc0nnrhkfnnzqp", status=AdStatus.QUEUED, priority=1, submitted_at=utcnow(), ad=AD)
    attempt = started_record(queued, "7.1", "w1")  # the fast path: never written
    failure = AdError(error_class="PermanentError", message="no", retryable=False, at=utcnow())
    rec = parked(queued, attempt, failure, dlq_full(), 4.0, owner("7.1"))
    assert rec is not None and rec.status == AdStatus.QUEUED and rec.attempts == 1 and rec.delivery == "7.1"
    assert rec.error is not None and rec.error.error_class == "DlqFull"
    assert "GAMEAD_DLQ" in rec.error.message and "dlq.max_msgs" in rec.error.message
    assert rec.error.message.startswith("PermanentError not dead-lettered yet")
    assert rec.dead_letter_error == failure and rec.retry_at is not None
    # final meanwhile, or a later delivery owns it: nothing written
    assert parked(rec.model_copy(update={"status": AdStatus.COMPLETED}), attempt, failure, dlq_full(), 4.0,
                  owner("7.1")) is None
    assert parked(rec.model_copy(update={"status": AdStatus.PROCESSING, "delivery": "7.2"}), attempt, failure,
                  dlq_full(), 4.0, owner("7.1")) is None


def test_the_back_off_doubles_per_refusal_in_a_row_to_its_cap_and_starts_again_once_the_dlq_takes() -> None:
    stats = WorkerStats()
    wait = DlqWait(stats, "w1")
    delays = [wait.refused(dlq_full()) for _ in range(8)]
    assert delays[:3] == [1.0, 2.0, 4.0] and delays[-1] == DLQ_BACKOFF_CAP
    assert (stats.last_error or "").startswith("dlq_full: the DLQ (stream GAMEAD_DLQ) is full")
    assert stats.storage_failures == 0  # not our storage
    wait.took()
    assert wait.refused(dlq_full()) == 1.0


def test_the_dlq_is_full_at_its_limit_only_and_never_when_unlimited() -> None:
    assert is_full(3, 3) and is_full(4, 3) and not is_full(2, 3)
    assert not is_full(10, None) and not is_full(10, -1) and not is_full(None, 3)
    assert dlq_section(1, 200, 1) == {"size": 1, "bytes": 200, "maxMsgs": 1, "full": True}


def test_each_full_store_has_its_own_code_naming_it_and_its_setting() -> None:
    assert (dlq_full().code, dlq_full().details) == ("dlq_full", {"stream": "GAMEAD_DLQ", "setting": "dlq.max_msgs"})
    assert (jobs_full().code, jobs_full().details) == ("jobs_full", {"bucket": "gamead_jobs",
                                                                     "setting": "jobs.max_bytes"})
