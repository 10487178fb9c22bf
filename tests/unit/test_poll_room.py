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


def test_a_step_places_only_for_the_room_beyond_its_live_long_polls_most_urgent_first() -> None:
    assert to_place(KEYS, 2) == KEYS[:2]  # room for 2 more ads, none live: the two most urgent levels
    assert to_place(KEYS, 4, live=2) == KEYS[:2]  # two long polls still waiting count against the room
    assert to_place(KEYS, 2, live=3) == []  # 5 long polls for 2 ads before (churn52)
    assert to_place(KEYS, 0) == []  # full: nothing more (the head reads watch them, .long_poll.LongPolls.short)


def test_room_for_every_long_poll_puts_every_one_back() -> None:
    assert to_place(KEYS, 5) == KEYS
    assert to_place(KEYS, 9, live=4) == KEYS
