"""The suspect lease's pure rules (gamead_core.worker.turn_rule): at most one suspect ad runs alone in the fleet."""

from __future__ import annotations

import orjson
import pytest

from gamead_core.config import GameadSettings
from gamead_core.scaling.lease_rule import Lease
from gamead_core.worker.suspect_turn import bound_of
from gamead_core.worker.turn_rule import Turn, held_by, turn_bound, verdict

NOW = 1_800_000_000.0
HELD = Turn(holder="w2", pid=4242, ad_id="01ad", taken_at=NOW - 3, bound=100.0)


def test_a_free_lease_is_taken() -> None:
    assert verdict(None, "w1", 1, NOW) == ("take", "")  # no key, deleted, unreadable
    released = Turn("", 0, "", NOW - 1, 100.0)  # gamead doctor --repair writes holder ""
    assert verdict(released, "w1", 1, NOW) == ("take", "released")


def test_a_live_holder_keeps_it_and_the_ad_is_handed_back_naming_it() -> None:
    assert verdict(HELD, "w1", 1, NOW) == ("look_up", "")  # its registry entry tells first
    what, why = verdict(HELD, "w1", 1, NOW, holder_pid=4242)
    assert what == "hand_back"
    assert why == "ad 01ad has the turn on worker w2 (pid 4242), taken 3.0 s ago"


def test_this_process_holding_it_for_another_ad_hands_back_without_a_look_up() -> None:
    assert verdict(HELD, "w2", 4242, NOW) == ("hand_back", "this worker runs ad 01ad alone")


def test_this_processs_own_lease_with_no_turn_of_it_running_is_a_leftover_taken_at_once() -> None:
    """final53 R1: a release that failed (logged at DEBUG), or a compare-and-set that landed with its answer lost,
    left the lease to its own process, which handed every suspect ad back (and every other worker too: its entry is
    live) until the bound, 138 s at the defaults. With no turn of that process running, it is taken over."""
    assert verdict(HELD, "w2", 4242, NOW, running_here=False) == (
        "take", "this process's own, for ad 01ad, left by a turn that ended (not released)")


@pytest.mark.parametrize(("holder_pid", "why"), [
    (None, "its holder w2 (pid 4242) has no registry entry any more"),
    (77, "its holder w2 is another process now (pid 77, not 4242)"),  # restarted under its id: the holder died
])
def test_a_dead_holders_lease_is_taken_over(holder_pid: int | None, why: str) -> None:
    assert verdict(HELD, "w1", 1, NOW, holder_pid=holder_pid) == ("take", why)


def test_its_own_next_process_takes_it_without_a_look_up() -> None:
    assert verdict(HELD, "w2", 77, NOW) == ("take", "this worker's previous process (pid 4242) died running ad 01ad "
                                                   "alone")


def test_past_its_bound_it_is_taken_whoever_holds_it() -> None:
    later = NOW - 3 + 100
    assert verdict(HELD, "w1", 1, later, holder_pid=4242) == ("take", "taken 100 s ago, past its bound of 100 s")
    assert verdict(HELD, "w1", 1, later - 0.01, holder_pid=4242)[0] == "hand_back"


def test_the_value_round_trips_and_reads_as_a_leader_lease_for_the_doctor() -> None:
    assert Turn.from_json(HELD.to_json()) == HELD
    lease = Lease.from_json(HELD.to_json())
    assert lease is not None and lease.holder == "w2" and lease.expires_at == HELD.expires_at
    assert lease.ttl == pytest.approx(100.0)
    for junk in (b"", b"{}", b"not json", b'{"acquiredAt": "x", "expiresAt": 1}', orjson.dumps([1])):
        assert Turn.from_json(junk) is None  # free: taken over by compare-and-set


def test_held_by_names_one_process() -> None:
    assert held_by(HELD, "w2", 4242)
    assert not held_by(HELD, "w2", 4243) and not held_by(HELD, "w1", 4242) and not held_by(None, "w2", 4242)


def test_the_bound_covers_a_live_holders_whole_turn() -> None:
    assert turn_bound(60.0, 8.0, 10.0) == 138.0
    settings = GameadSettings()
    wait = settings.queue.idle_wait + 1.0 + 2.0  # its long polls' life, POLL_MARGIN, alone.MARGIN
    assert bound_of(settings) == pytest.approx(2 * settings.worker.task_timeout + wait + settings.registry.ttl)


def test_a_hand_written_lease_never_holds_every_suspect_ad_back_for_ever() -> None:
    """attack53: ``expiresAt`` 9999999999 naming a live worker (its pid right) kept 4 suspect ads handed back every
    second while ``gamead doctor`` said every invariant held; the written bound is trusted up to 10 of this
    worker's own, and a lease taken ahead of now (nats-server's clock, every worker's) is free at once."""
    far = Turn(holder="w2", pid=4242, ad_id="hand", taken_at=NOW - 3, bound=9_999_999_999.0 - NOW)
    assert verdict(far, "w1", 1, NOW, holder_pid=4242, own_bound=100.0)[0] == "hand_back"  # within 10 x 100 s
    assert verdict(far, "w1", 1, NOW - 3 + 1000, holder_pid=4242, own_bound=100.0) == (
        "take", "taken 1000 s ago, past its bound of 1000 s")
    ahead = Turn(holder="w2", pid=4242, ad_id="hand", taken_at=NOW + 3600, bound=100.0)
    assert verdict(ahead, "w1", 1, NOW, own_bound=100.0) == (
        "take", "taken 3600 s ahead of now: written by hand or by a bug")
    assert verdict(ahead, "w2", 4242, NOW, own_bound=100.0)[0] == "take"  # its own process too
    assert verdict(HELD, "w1", 1, NOW, holder_pid=4242, own_bound=100.0)[0] == "hand_back"  # a live one holds
