"""Pure rules of attack31a F1: when the full record bucket stops intake, and the budget a recreated record keeps."""

from __future__ import annotations

from gamead_core.ad_ids import new_ad_id
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.stats.records_room import at_risk, over_mark
from gamead_core.worker.deadletter import assumed_note
from gamead_core.worker.records import attempts_floor, floored
from tests.support import ad

MIB = 1024 * 1024


def test_intake_stops_only_when_the_full_bucket_would_drop_a_live_ads_record() -> None:
    now = 10_000.0
    full = dict(used=MIB, max_bytes=MIB, refuse_at=0.9, now=now)
    # every record live (no worker): the oldest live ad is the bucket's oldest record
    assert at_risk(**full, bucket_oldest=now - 60, live_oldest=now - 60)
    # a bucket full of completed records, the live ads recent: the steady state of a busy service, not refused
    assert not at_risk(**full, bucket_oldest=now - 600, live_oldest=now - 5)
    # the oldest live ad within the oldest 10 % of the bucket's span: its record is among the next dropped
    assert at_risk(**full, bucket_oldest=now - 600, live_oldest=now - 550)
    assert at_risk(**full, bucket_oldest=now - 600, live_oldest=now - 700)  # older than every record
    assert not at_risk(**full, bucket_oldest=now - 600, live_oldest=None)  # nothing live
    assert at_risk(**full, bucket_oldest=None, live_oldest=now)  # cannot tell: over the mark, refused
    assert not at_risk(used=MIB // 2, max_bytes=MIB, refuse_at=0.9, now=now, bucket_oldest=now, live_oldest=now)
    assert not over_mark(MIB, None, 0.9) and not over_mark(MIB, -1, 0.9) and over_mark(900, 1000, 0.9)


def test_a_recreated_records_attempts_count_the_deliveries_and_leave_half() -> None:
    assert attempts_floor(1, 5) == 0  # a first delivery: nothing charged before
    # review31 R3: deliveries are not all charged (hand-backs): at most half the budget is assumed, never all of it
    assert [attempts_floor(d, 5) for d in range(2, 9)] == [1, 2, 2, 2, 2, 2, 2]
    assert attempts_floor(231, 5) == 2 and attempts_floor(231, 10) == 5
    assert attempts_floor(3, 1) == 0 and attempts_floor(4, None) == 3


def test_a_dlq_entry_of_an_ad_whose_record_was_lost_says_its_count_is_partly_assumed() -> None:
    """review31 R3: an ad analysed once after its record was lost at delivery 231 was dead-lettered "after 5
    attempts", its 4 phantom attempts indistinguishable from real ones."""
    record = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(),
                      ad=AdSubmission.model_validate(ad("Lost record")))
    again = floored(record, 231, 5)
    assert (again.attempts, again.attempts_assumed) == (2, 2)
    assert floored(record, 1, 5) == record  # a first delivery: nothing assumed
    later = floored(again.model_copy(update={"attempts": 4}), 40, 5)  # charged twice since: nothing more assumed
    assert (later.attempts, later.attempts_assumed) == (4, 2)
    note = assumed_note(again.model_copy(update={"attempts": 5}), 5)
    assert "at least 3 attempt(s)" in note and "2 of the 5 counted are assumed" in note, note
    assert assumed_note(record.model_copy(update={"attempts": 5}), 5) == ""  # every attempt counted: no note
