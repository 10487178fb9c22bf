"""Pure rules of attack31a F1: when the full record bucket stops intake, and the budget a recreated record keeps."""

from __future__ import annotations

from gamead_core.stats.records_room import at_risk, over_mark
from gamead_core.worker.records import attempts_floor

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


def test_a_recreated_records_attempts_count_the_deliveries_and_leave_one() -> None:
    assert attempts_floor(1, 5) == 0  # a first delivery: nothing charged before
    assert [attempts_floor(d, 5) for d in range(2, 9)] == [1, 2, 3, 4, 4, 4, 4]  # never more than max - 1
    assert attempts_floor(3, 1) == 0 and attempts_floor(4, None) == 3
