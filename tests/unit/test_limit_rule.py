"""The rule of which of a node's own queue limits a start may write over the live topology (attack31c F3, F6)."""

from __future__ import annotations

from nats.js.api import ConsumerConfig, StreamConfig

from gamead_core.queue.limit_rule import NEVER_LOWERED, Drift, guarded, split, summarize


def _stream(**limits: object) -> StreamConfig:
    return StreamConfig(name="GAMEAD_ADS", **limits)  # type: ignore[arg-type]


def test_a_start_raises_but_never_lowers_without_the_operators_word() -> None:
    live, own = _stream(max_msgs=1_000_000, max_bytes=-1, duplicate_window=120), _stream(
        max_msgs=50, max_bytes=1024, duplicate_window=300)
    apply, kept = split("stream GAMEAD_ADS", ("max_msgs", "max_bytes", "duplicate_window", "allow_atomic"), live, own,
                        lower=False)
    assert apply == ("duplicate_window", "allow_atomic")  # a raise, and a field gamead fixes itself
    assert [(k.field, k.live, k.own, k.why) for k in kept] == [("max_msgs", 1_000_000, 50, NEVER_LOWERED),
                                                              ("max_bytes", -1, 1024, NEVER_LOWERED)]
    assert split("stream GAMEAD_ADS", ("max_msgs",), own, live, lower=False) == (("max_msgs",), ())  # 50 → 1,000,000


def test_the_operators_word_lowers_but_never_below_what_the_stream_holds() -> None:
    live, own = _stream(max_msgs=1000, max_bytes=10_000), _stream(max_msgs=50, max_bytes=5_000)
    apply, kept = split("stream GAMEAD_ADS", ("max_msgs", "max_bytes"), live, own, lower=True, held_msgs=200,
                        held_bytes=4_000)
    assert apply == ("max_bytes",)
    assert [k.field for k in kept] == ["max_msgs"] and "holds 200 messages" in str(kept[0].why)
    assert split("stream GAMEAD_ADS", ("max_msgs",), live, own, lower=True, held_msgs=50) == (("max_msgs",), ())


def test_a_consumers_ack_wait_is_raised_not_lowered_and_the_five_consumers_share_one_line() -> None:
    live, own = ConsumerConfig(ack_wait=15), ConsumerConfig(ack_wait=4)
    kept = [k for lv in range(1, 6) for k in split(f"consumer gamead-p{lv}", ("ack_wait", "max_deliver"), live, own,
                                                   lower=False)[1]]
    assert summarize(tuple(kept)) == ("queue.ack_wait: live 15 s on consumers gamead-p1, gamead-p2, gamead-p3, "
                                      "gamead-p4, gamead-p5, this node's 4 s",)
    assert split("consumer gamead-p1", ("ack_wait",), own, live, lower=False) == (("ack_wait",), ())


def test_the_shared_stores_are_guarded_and_the_buckets_no_setting_sizes_are_not() -> None:
    assert guarded("stream", "GAMEAD_ADS") and guarded("stream", "GAMEAD_ADS_3") and guarded("consumer", "gamead-p1")
    assert guarded("stream", "GAMEAD_DLQ") and guarded("stream", "GAMEAD_AUDIT") and guarded("bucket", "gamead_ads")
    assert guarded("bucket", "gamead_registry") and guarded("bucket", "gamead_jobs")
    assert not guarded("bucket", "gamead_leases") and not guarded("bucket", "gamead_health")
    assert summarize((Drift("stream GAMEAD_ADS", "max_msgs", -1, 50),)) == (
        "queue.max_msgs: live unlimited on stream GAMEAD_ADS, this node's 50",)


def test_a_smaller_dlq_or_record_limit_is_kept_and_named_by_its_own_setting() -> None:
    """fix32lim: a start with dlq.max_msgs 2 or records.max_bytes 1 MiB shrank the fleet's DLQ (every new dead
    letter refused) and record bucket (the oldest records, live ads' among them, dropped)."""
    live = StreamConfig(name="GAMEAD_DLQ", max_msgs=1_000_000, max_age=14 * 86400, duplicate_window=120)
    own = StreamConfig(name="GAMEAD_DLQ", max_msgs=2, max_age=3600, duplicate_window=120)
    apply, kept = split("stream GAMEAD_DLQ", ("max_msgs", "max_age"), live, own, lower=False)
    assert apply == () and summarize(kept) == (
        "dlq.max_msgs: live 1,000,000 on stream GAMEAD_DLQ, this node's 2",
        "dlq.max_age: live 1,209,600 s on stream GAMEAD_DLQ, this node's 3,600 s")
    assert split("stream GAMEAD_DLQ", ("max_msgs", "max_age"), own, live, lower=False) == (("max_msgs", "max_age"), ())
    records_live = StreamConfig(name="KV_gamead_ads", max_bytes=4 * 1024**3, max_age=30 * 86400, duplicate_window=120)
    records_own = StreamConfig(name="KV_gamead_ads", max_bytes=1024**2, max_age=30 * 86400, duplicate_window=60)
    apply, kept = split("bucket gamead_ads", ("max_bytes", "duplicate_window"), records_live, records_own, lower=True,
                        held_bytes=2 * 1024**2)
    assert apply == ("duplicate_window",)  # no setting of its own: applied as before
    assert summarize(kept, why=True) == (
        "records.max_bytes: live 4,294,967,296 on bucket gamead_ads, this node's 1,048,576: kept the live value (the "
        "bucket holds 2,097,152 bytes: lowering it below that would drop the oldest records, live ads' among them; let "
        "the queue drain and old records expire first)",)
    assert split("bucket gamead_ads", ("max_bytes",), records_live, records_own, lower=True,
                 held_bytes=1000) == (("max_bytes",), ())
