"""Pure rules of attack31a F1: when the full record bucket stops intake, and the budget a recreated record keeps."""

from __future__ import annotations

from gamead_core.ad_ids import new_ad_id
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.stats.records_position import floor_of
from gamead_core.stats.records_room import at_risk, over_mark, refuse_below
from gamead_core.worker.deadletter import assumed_note
from gamead_core.worker.records import attempts_floor, floored
from tests.support import ad

MIB = 1024 * 1024


def test_intake_stops_only_when_the_full_bucket_would_drop_a_live_ads_record() -> None:
    full = dict(used=MIB, max_bytes=MIB, refuse_at=0.9, messages=1005)
    # review31 R1: 5 old records, then 1000 new ones, the oldest live ad's record the 10th of the new: 14 records
    # go before it, fewer than the 10 % (100.5) the refusal keeps: refused, however old or new the records are
    assert at_risk(**full, before_live=14)
    assert at_risk(**full, before_live=0)  # every record live (no worker)
    # a bucket full of finished ads' records, the live ones at its new end: a busy service's steady state
    assert not at_risk(**full, before_live=900)
    assert not at_risk(**full, before_live=None)  # nothing live
    assert not at_risk(used=MIB // 2, max_bytes=MIB, refuse_at=0.9, messages=500, before_live=0)  # room left
    assert refuse_below(1005, 0.9) == 1005 * (1 - 0.9) and refuse_below(-1, 0.9) == 0
    assert not over_mark(MIB, None, 0.9) and not over_mark(MIB, -1, 0.9) and over_mark(900, 1000, 0.9)


def test_the_oldest_live_record_is_the_lowest_sequence_not_the_oldest_message() -> None:
    # review31 R1b: the oldest message's ad was rewritten (seq 990), another live ad's record sits at 420
    assert floor_of([990, 420, None], []) == 420  # None: a record already gone, nothing left to keep
    assert floor_of([990], [700]) == 700  # the ads past the heads: bounded by the bucket at their message's time
    assert floor_of([None], [None]) is None and floor_of([], []) is None  # no live ad with a record: no floor


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
