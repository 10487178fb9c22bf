"""The worker's prefetch buffer and the aging key it orders by (issue 14, worker drain target): pure, no servers."""

from __future__ import annotations

import asyncio
import random

from hypothesis import given
from hypothesis import strategies as st
from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.queue.aging import LevelHead, due_key, head_key, level_score, pull_order
from gamead_core.queue.pull_request import next_head_age
from gamead_core.worker.held import HeldAds
from gamead_core.worker.keepalive import AckWaitKeepAlive
from gamead_core.queue.aging import delivery_key
from gamead_core.worker.budget import waiting_since
from gamead_core.worker.handback import REMEMBER, HandBacks, bound_broken, over_bound
from gamead_core.worker.prefetch import PrefetchBuffer, buffer_stall, next_pace, prefetch_depth

STEP = 10.0
NOW = 1_800_000_000.0


def _msg(level: int, seq: int, published: float, delivered: int = 1) -> Msg:
    """A work message as JetStream delivers it: the ack subject carries stream, sequence, count and time stamp."""
    reply = (f"$JS.ACK.{names.ADS_STREAM}.{names.level_consumer(level)}.{delivered}.{seq}.{seq}."
             f"{int(published * 1e9)}.0")
    return Msg(None, subject=names.level_subject(level), reply=reply, data=b"{}")  # type: ignore[arg-type]


waits = st.floats(0, 10_000, allow_nan=False)


@given(a=st.sampled_from(names.LEVELS), b=st.sampled_from(names.LEVELS), wa=waits, wb=waits)
def test_the_time_free_key_orders_two_ads_as_their_scores_do(a: int, b: int, wa: float, wb: float) -> None:
    """``due_key`` (kept with a buffered ad) and ``level_score`` (the puller's order at one moment) agree."""
    ka, kb = due_key(a, NOW - wa, STEP), due_key(b, NOW - wb, STEP)
    sa, sb = level_score(a, wa, STEP), level_score(b, wb, STEP)
    if abs(sa - sb) > 1e-6:
        assert (ka < kb) == (sa < sb)


@given(heads=st.lists(st.tuples(st.sampled_from(names.LEVELS), waits), min_size=1, max_size=5,
                     unique_by=lambda t: t[0]))
def test_the_head_keys_follow_the_pull_order(heads: list[tuple[int, float]]) -> None:
    """The puller stops at the first level whose head key does not beat the buffer: that needs the keys to
    rise along ``pull_order``."""
    view = {lvl: LevelHead(lvl, 1, wait) for lvl, wait in heads}
    keys = [head_key(view[lvl], NOW, STEP) for lvl in pull_order(view, STEP)]
    assert keys == sorted(keys)


def test_the_buffer_starts_the_most_urgent_after_aging_first_ties_in_arrival_order() -> None:
    buffer = PrefetchBuffer()
    fresh_p5 = _msg(5, 1, NOW)  # key NOW + 50
    old_p5 = _msg(5, 2, NOW - 45)  # waited 4.5 steps: key NOW + 5, ahead of a fresh p1 (NOW + 10)
    fresh_p1 = _msg(1, 3, NOW)
    twin_p1 = _msg(1, 4, NOW)
    for msg in (fresh_p5, old_p5, fresh_p1, twin_p1):
        buffer.push(msg, delivery_key(msg, NOW, STEP))
    assert buffer.best_key() == NOW + 5
    assert [buffer.pop() for _ in range(2)] == [old_p5, fresh_p1]
    assert len(buffer) == 2
    assert buffer.take_all() == [twin_p1, fresh_p5] and len(buffer) == 0 and buffer.best_key() is None


def test_the_surplus_beyond_the_bound_is_the_worst_keys_and_the_rest_stays_in_aging_order() -> None:
    """A buffer over its bound gives up its worst ads (the last arrival first among equal keys); what stays still
    pops best first (prefetch15: the surplus handed back at once, not kept)."""
    buffer = PrefetchBuffer()
    p5, old_p5, p1, twin_p1, p3 = _msg(5, 1, NOW), _msg(5, 2, NOW - 45), _msg(1, 3, NOW), _msg(1, 4, NOW), _msg(3, 5, NOW)
    for msg in (p5, old_p5, p1, twin_p1, p3):
        buffer.push(msg, delivery_key(msg, NOW, STEP))
    assert over_bound(buffer, 5) == [] and buffer.take_worst(0) == []
    assert over_bound(buffer, 2) == [p5, p3, twin_p1]
    assert [buffer.pop(), buffer.pop()] == [old_p5, p1] and len(buffer) == 0
    buffer.push(p3, 1.0)
    assert over_bound(buffer, -1) == [p3]


def test_a_hand_back_for_want_of_room_notes_its_level_until_a_step_leaves_room_and_remembers_the_ad() -> None:
    """attack32b F1 (replacing attack31c F2's delayed hand-backs): every hand-back is at once; its (level, partition)
    gets no long poll back (``full``) until a start step leaves room for one ad of each long poll (free slots and
    places below the buffer's bound; figure: one place left in a depth-1 buffer cleared it) and hands nothing back,
    and the ad is remembered (:data:`REMEMBER` s) so the view counts it due from its first publish."""
    backs = HandBacks(held=HeldAds(), keepalive=None, shielded=None, stats=None, worker_id="w",  # type: ignore[arg-type]
                      announce=None)  # type: ignore[arg-type]
    ad, other = _msg(5, 7, NOW), _msg(4, 8, NOW)
    backs.note([ad], 0.0)
    backs.note([other], 0.3)
    assert backs.full == {(5, 0), (4, 0)} and (names.ADS_STREAM, 7) in backs.handed()
    backs.after_step([ad], free=2, started=1, depth=8, buffered=0)  # handed back again: still no room
    backs.after_step([], free=1, started=1, depth=1, buffered=1)
    # attack37 F4: one place left in the buffer is not room for the five long polls' ads (before: cleared here)
    backs.after_step([], free=1, started=1, depth=1, buffered=0)
    backs.after_step([], free=4, started=4, depth=5, buffered=1)
    assert backs.full == {(5, 0), (4, 0)}
    backs.after_step([], free=2, started=1, depth=1, buffered=0)  # a slot it found nothing for: room for 2 of 5
    assert backs.full == {(5, 0), (4, 0)}
    backs.after_step([], free=4, started=0, depth=1, buffered=0)  # every slot free and the buffer empty
    assert backs.full == set() and (names.ADS_STREAM, 8) in backs.handed()
    backs.note([], REMEMBER + 1)  # forgotten after REMEMBER s
    assert (names.ADS_STREAM, 7) not in backs.handed()
    backs.note([ad], REMEMBER + 2)
    backs.after_step([], free=4, started=4, depth=6, buffered=1)  # room for one ad from each of 5 long polls
    assert backs.full == set()


def test_an_ad_this_worker_handed_back_is_due_from_its_first_publish_one_held_elsewhere_is_not() -> None:
    """A handed-back ad is ``queued`` with no ``retryAt``, as one another worker holds unstarted: only the worker
    that handed it back counts it due, from its publish time."""
    from gamead_core.models import AdRecord  # noqa: PLC0415

    record = AdRecord.model_validate({"id": "01x", "status": "queued", "priority": 5, "ad": {
        "title": "t", "genre": "RPG", "description": "Fly", "callToAction": "Play", "duration": 15},
        "submittedAt": "2027-01-15T08:00:00Z"})
    assert waiting_since(record, NOW - 30, NOW, ack_wait=30, task_timeout=60, handed=True) == NOW - 30
    assert waiting_since(record, NOW - 30, NOW, ack_wait=30, task_timeout=60) is None


def test_the_worker_invariant_names_what_broke() -> None:
    assert bound_broken(3, 4, depth=3, concurrency=4) is None
    assert bound_broken(0, 0, depth=-1, concurrency=4) is None
    assert bound_broken(4, 4, depth=3, concurrency=4) == "4 ads buffered beyond the bound of 3"
    assert bound_broken(0, 5, depth=3, concurrency=4) == "5 analyses running in 4 slots"


def test_the_bar_of_a_pull_is_the_last_buffered_ad_that_would_start() -> None:
    """With 2 free slots and a buffer of a P1 and a P5 ad, a P1 ad waiting in the queue must take the second slot:
    the pull's bar is the P5 ad's key, not the buffer's best (before, only ads beating the buffered P1 were pulled,
    so the P5 ad started beside it while P1 ads waited)."""
    buffer = PrefetchBuffer()
    p1, p5 = _msg(1, 1, NOW), _msg(5, 2, NOW)
    for msg in (p5, p1):
        buffer.push(msg, delivery_key(msg, NOW, STEP))
    assert buffer.bar_key(1) == buffer.best_key() == NOW + 10
    assert buffer.bar_key(2) == buffer.bar_key(3) == NOW + 50
    assert len(buffer) == 2 and PrefetchBuffer().bar_key(2) is None


def test_a_redelivery_is_due_since_its_publish_and_a_future_stamp_counts_as_now() -> None:
    # a reviewer's finding: keyed at "now", a level-3 redelivery that had aged 100 s went behind every newer
    # level-1/2 arrival for up to 2 aging steps past the aging bound
    assert delivery_key(_msg(3, 9, NOW - 100, delivered=2), NOW, STEP) == NOW - 100 + 30
    assert delivery_key(_msg(3, 9, NOW + 5), NOW, STEP) == NOW + 30  # a clock ahead never makes it older
    assert delivery_key(_msg(2, 9, NOW - 3), NOW, STEP) == NOW - 3 + 20


def test_a_worker_prefetches_only_what_its_slots_finish_within_the_wait() -> None:
    """worker.prefetch 8, 4 slots, prefetch_wait 50 ms: a short analysis (4 ms a slot) takes the whole cap, a
    50 ms one 4 ads, a 2.5 s one (or a worker that has timed none yet) nothing; prefetch_wait 0: always the cap."""
    assert prefetch_depth(8, 4, 0.004, 0.05) == 8
    assert prefetch_depth(8, 4, 0.05, 0.05) == 4
    assert prefetch_depth(8, 4, 2.5, 0.05) == 0
    assert prefetch_depth(8, 4, None, 0.05) == 0
    assert prefetch_depth(8, 4, None, 0) == 8 and prefetch_depth(8, 4, 2.5, 0) == 8
    assert prefetch_depth(0, 4, 0.001, 0) == 0
    assert next_pace(None, 2.0) == 2.0 and next_pace(1.0, 2.0) == 1.2


def test_a_level_looks_no_more_patient_than_the_last_new_ad_taken_from_it() -> None:
    taken = [_msg(3, 1, NOW - 8), _msg(3, 2, NOW - 6), _msg(3, 3, NOW - 100, delivered=2)]
    assert next_head_age(8.0, NOW, taken) == 6.0  # the redelivery says nothing about the next new ad
    assert next_head_age(8.0, NOW, [_msg(3, 5, NOW - 100, delivered=3)]) == 8.0
    assert next_head_age(2.0, NOW, taken) == 2.0  # never older than the view said


def test_a_prefetched_ad_is_flagged_started_only_when_it_starts() -> None:
    held = HeldAds()
    held.hold(("GAMEAD_ADS", 1), "ad1", "1.1", "$JS.ACK.x.1")
    assert [w["started"] for w in held.wire()] == [False]  # buffered: a crash must not charge it
    assert held.mark_started(("GAMEAD_ADS", 1)) is True and held.started(("GAMEAD_ADS", 1))
    assert held.mark_started(("GAMEAD_ADS", 1)) is False  # no change, no announcement
    assert [h.started for h in held.listing()] == [True]


def test_a_prefetched_ad_is_kept_alive_by_one_timer_from_pull_to_settlement() -> None:
    async def main() -> None:
        keep = AckWaitKeepAlive(30)
        msg = _msg(3, 7, NOW)
        keep.hold(msg)
        assert (names.ADS_STREAM, 7) in keep._timers  # noqa: SLF001
        keep.hold(msg)  # its delivery takes the deadline over (one per delivery, the timer shared)
        assert len(keep._timers) == 1  # noqa: SLF001
        keep.release(msg)
        assert len(keep._timers) == 0  # noqa: SLF001

    asyncio.run(main())


def test_a_huge_prefetch_wait_sizes_the_buffer_at_its_cap_not_an_overflow() -> None:
    """A reviewer's hang: ``worker.prefetch_wait: inf`` (or 1e308) made ``int(slots * wait / pace)`` raise
    OverflowError at every pull, so the worker never pulled again. The setting is now finite and ≤ 60 s, and the
    sizing takes the cap before ``int``."""
    assert prefetch_depth(8, 4, 0.001, 1e308) == 8
    assert prefetch_depth(8, 4, 1e-300, 60) == 8


def test_a_full_worker_keeps_its_buffer_4_prefetch_waits_at_least_1_s_and_for_ever_without_a_limit() -> None:
    assert buffer_stall(0.05) == 1.0  # the default: 1 s
    assert buffer_stall(0.5) == 2.0
    assert buffer_stall(0) is None  # prefetch_wait 0: no limit, hoarding included


def test_the_bar_is_the_free_th_best_key_of_any_buffer() -> None:
    """``bar_key`` reads the first ``free`` levels of the heap only (drain46): the same key as the ``free``-th
    smallest of all, for random buffers (ties, pops and pushes between) and every ``free``."""
    rnd = random.Random(46)
    for _ in range(300):
        buffer = PrefetchBuffer()
        for _ in range(rnd.randint(1, 60)):
            buffer.push(object(), float(rnd.randint(0, 40)))  # type: ignore[arg-type]
            if rnd.random() < 0.2:
                buffer.pop()
        keys = sorted(entry[0] for entry in buffer._heap)
        for free in range(1, len(keys) + 3):
            assert buffer.bar_key(free) == (keys[min(free, len(keys)) - 1] if keys else None), (free, keys)
