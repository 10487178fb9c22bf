"""churn51: a pull step that took more ads than the worker has room for puts no long poll back (pure): before, all five
went back at once for a worker whose long polls' five ads overfilled its four slots, and the ad its start step handed
back came straight back to one of them (tests/integration/test_backlog_hints.py, the live case)."""

from __future__ import annotations

from gamead_core.queue.poll_room import to_place

KEYS = [(1, 0), (2, 0), (3, 0), (4, 0), (5, 0)]


def test_no_limit_puts_every_long_poll_back() -> None:
    assert to_place(KEYS, None) == KEYS


def test_a_step_that_hands_back_puts_none_back() -> None:
    assert to_place(KEYS, -1) == []  # 5 ads for 4 slots: one is handed back


def test_a_step_with_room_left_or_just_full_puts_every_one_back() -> None:
    assert to_place(KEYS, 0) == KEYS  # its next free slot must see the next urgent ad (bench_aging.py)
    assert to_place(KEYS, 2) == KEYS
