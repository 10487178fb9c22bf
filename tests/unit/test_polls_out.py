"""Which long poll an answer ends (gamead_core.queue.polls_out): a status only the request it was sent to, a delivery
the oldest one out; an unanswered one past its margin is dropped, so the bookkeeping stays bounded. The race itself,
on a real nats-server: tests/integration/test_long_poll_late_answer.py."""

from __future__ import annotations

from gamead_core.queue.polls_out import PollsOut

KEY = (1, 0)


def _two_out() -> PollsOut[tuple[int, int]]:
    """An old long poll (its time up by the client's count, still at the server) and the new one placed beside it."""
    out: PollsOut[tuple[int, int]] = PollsOut()
    out.sent(KEY, "bell.1", 10.0, gone_before=0.0)
    out.sent(KEY, "bell.2", 20.0, gone_before=9.0)
    return out


def test_the_old_ones_late_408_leaves_the_new_one_watched() -> None:
    out = _two_out()
    assert out.count(KEY) == 2 and out.watched(15.0) == 1
    out.ended(KEY, "bell.1")
    assert out.count(KEY) == 1 and out.expiry(KEY) == 20.0 and out.watched(15.0) == 1


def test_an_ad_ends_the_oldest_one_out_as_the_server_serves_them() -> None:
    out = _two_out()
    out.ended(KEY, None)
    assert out.expiry(KEY) == 20.0
    out.ended(KEY, "bell.1")  # nothing more is said to an answered request: a stray status ends nothing else
    assert out.count(KEY) == 1
    out.ended(KEY, "bell.2")
    assert not out and out.expiry(KEY) == 0.0 and out.latest() == 0.0


def test_one_never_answered_is_dropped_at_the_next_placing_past_its_margin() -> None:
    out = _two_out()
    out.sent(KEY, "bell.3", 30.0, gone_before=21.0)  # bell.1 and bell.2 unanswered 1 s past their expiry: gone
    assert out.count(KEY) == 1 and out.latest() == 30.0
    out.ended(KEY, None)
    assert not out


def test_keys_are_apart_and_a_clear_forgets_all() -> None:
    out = _two_out()
    out.ended((2, 0), None)
    out.ended((2, 0), "bell.2")
    assert out.count(KEY) == 2 and out.count((2, 0)) == 0
    out.clear()
    assert not out and out.watched(0.0) == 0
