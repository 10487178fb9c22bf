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


def test_only_the_work_streams_and_level_consumers_are_guarded() -> None:
    assert guarded("stream", "GAMEAD_ADS") and guarded("stream", "GAMEAD_ADS_3") and guarded("consumer", "gamead-p1")
    assert not guarded("stream", "GAMEAD_DLQ") and not guarded("bucket", "gamead_ads")
    assert summarize((Drift("stream GAMEAD_ADS", "max_msgs", -1, 50),)) == (
        "queue.max_msgs: live unlimited on stream GAMEAD_ADS, this node's 50",)
