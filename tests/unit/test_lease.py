"""The leader lease rule, alone: acquire, renew, take over an expired lease, follow a live one."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gamead_core.scaling.lease import Lease, lease_decision, lease_ttl

TTL = 15.0


def test_ttl_is_three_autoscaler_intervals() -> None:
    assert lease_ttl(5.0) == 15.0
    assert lease_ttl(0.5) == 1.5


def test_no_lease_is_acquired_for_one_ttl() -> None:
    d = lease_decision(100.0, None, "a", TTL)
    assert d.action == "acquire"
    assert d.write == Lease("a", 100.0, 100.0, 115.0)
    assert d.check_in == pytest.approx(5.0)  # renew every ttl / 3


def test_a_released_lease_is_acquired() -> None:
    released = Lease("", 50.0, 90.0, 90.0)
    d = lease_decision(100.0, released, "b", TTL)
    assert d.action == "acquire" and d.write is not None and d.write.holder == "b"


def test_the_holder_renews_and_keeps_its_start() -> None:
    mine = Lease("a", 10.0, 100.0, 115.0)
    d = lease_decision(105.0, mine, "a", TTL)
    assert d.action == "renew"
    assert d.write == Lease("a", 10.0, 105.0, 120.0)


def test_the_holder_takes_its_own_lease_again_after_expiry_as_a_new_term() -> None:
    """The compare-and-set on the revision proves nobody took it meanwhile, but the leadership lapsed (drill
    attack25 finding 8: "leader … since 00:18:09" after a 30 s freeze): the term starts again, and so it does
    when the holder's own deadline passed (``held`` False) while the lease had not yet expired."""
    mine = Lease("a", 10.0, 100.0, 115.0)
    d = lease_decision(116.0, mine, "a", TTL)
    assert d.action == "acquire" and d.write == Lease("a", 116.0, 116.0, 131.0)
    d = lease_decision(114.0, mine, "a", TTL, held=False)
    assert d.action == "acquire" and d.write == Lease("a", 114.0, 114.0, 129.0)
    assert lease_decision(114.0, mine, "a", TTL).write == Lease("a", 10.0, 114.0, 129.0)  # held: kept


def test_a_live_lease_of_another_is_followed_until_it_expires() -> None:
    theirs = Lease("a", 10.0, 100.0, 115.0)
    d = lease_decision(113.0, theirs, "b", TTL)
    assert d.action == "follow" and d.write is None
    assert d.check_in == pytest.approx(2.05)  # just after it is due to expire
    far = lease_decision(101.0, theirs, "b", TTL)
    assert far.check_in == pytest.approx(5.0)  # but at least every renewal period


@pytest.mark.parametrize("now", [115.0, 115.001, 500.0])
def test_an_expired_lease_of_another_is_taken_over(now: float) -> None:
    theirs = Lease("a", 10.0, 100.0, 115.0)
    d = lease_decision(now, theirs, "b", TTL)
    assert d.action == "take"
    assert d.write == Lease("b", now, now, now + TTL)


@pytest.mark.parametrize("ttl", [0.0, -1.0, float("nan")])
def test_a_non_positive_ttl_is_refused(ttl: float) -> None:
    with pytest.raises(ValueError):
        lease_decision(0.0, None, "a", ttl)


def test_an_empty_candidate_id_is_refused() -> None:
    with pytest.raises(ValueError):
        lease_decision(0.0, None, "", TTL)


def test_the_value_round_trips_and_garbage_is_no_lease() -> None:
    lease = Lease("api-host-1", 1.5, 2.5, 17.5)
    assert Lease.from_json(lease.to_json()) == lease
    assert lease.ttl == 15.0
    for junk in (None, b"", b"not json", b"[]", b'{"holder": "a"}', b'{"holder":"a","acquiredAt":"x",'
                 b'"renewedAt":1,"expiresAt":2}', b'{"holder":"a","acquiredAt":1,"renewedAt":1,"expiresAt":NaN}'):
        assert Lease.from_json(junk) is None


# --- the rule under compare-and-set: at most one live holder, ever ------------------------------------------

_steps = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["read", "write"]),
              st.one_of(st.just(0.0), st.floats(0.0, 1.0), st.floats(4.0, 7.0))),
    min_size=1,
    max_size=80,
)


@settings(max_examples=600)
@given(_steps)
@example([("a", "read", 0.0), ("a", "write", 0.0), ("b", "read", 5.95), ("b", "write", 0.0)])  # taken too early?
def test_compare_and_set_never_yields_two_live_holders(steps: list[tuple[str, str, float]]) -> None:
    """Candidates read and write in any interleaving; a write succeeds only on the revision its read saw.

    As in LeaseKeeper, a candidate decides when it reads, and after a successful write counts itself leader
    until ttl after that read; a lost race or a "follow" ends its belief. Whenever a write succeeds, no
    other candidate may still count itself leader.
    """
    ttl = 6.0
    value: Lease | None = None
    revision = 0
    pending: dict[str, tuple[int, float, Lease | None]] = {}  # candidate → (revision read, time, decision)
    believes: dict[str, float] = {}  # candidate → until when it counts itself leader
    now = 0.0
    for who, phase, gap in steps:
        now += gap
        if phase == "read":
            d = lease_decision(now, value, who, ttl)
            if d.write is None:
                believes.pop(who, None)
                pending.pop(who, None)
            else:
                pending[who] = (revision, now, d.write)
            continue
        if who not in pending:
            continue
        read_rev, read_at, write = pending.pop(who)
        if read_rev != revision:  # KeyWrongLastSequenceError
            believes.pop(who, None)
            continue
        others = [c for c, until in believes.items() if c != who and until > now]
        assert not others, f"{who} wrote the lease at {now} while {others} still lead"
        value, revision = write, revision + 1
        believes[who] = read_at + ttl


# --- acting and advice-only candidates (issue 14 item 6) ------------------------------------------------


def test_an_advice_only_candidate_never_takes_an_acting_holders_lease() -> None:
    """A ``gamead serve`` (backend none) on ``gamead up``'s NATS must not silence the local autoscaler: it
    follows the acting holder's lease, even just after it expired, and takes it only once it is long gone."""
    acting = Lease("up-host-1", 0.0, 10.0, 25.0)  # ttl 15, acts (the default)
    assert lease_decision(20.0, acting, "api-host-2", 15.0, acts=False).action == "follow"
    assert lease_decision(26.0, acting, "api-host-2", 15.0, acts=False).action == "follow"  # just expired
    late = lease_decision(25.0 + 3 * 15.0 + 0.1, acting, "api-host-2", 15.0, acts=False)
    assert late.action == "take" and late.write is not None and late.write.acts is False


def test_an_acting_candidate_takes_an_advice_only_holders_lease_at_once() -> None:
    advice = Lease("api-host-2", 0.0, 10.0, 25.0, acts=False)
    decision = lease_decision(11.0, advice, "up-host-1", 15.0)
    assert decision.action == "take" and decision.write is not None and decision.write.acts is True
    assert lease_decision(11.0, advice, "api-host-3", 15.0, acts=False).action == "follow"  # peers as before


def test_acts_round_trips_and_an_old_lease_without_it_acts() -> None:
    advice = Lease("a", 1.0, 2.0, 3.0, acts=False)
    assert Lease.from_json(advice.to_json()) == advice
    old = b'{"holder": "a", "acquiredAt": 1.0, "renewedAt": 2.0, "expiresAt": 3.0, "ttl": 1.0}'
    assert Lease.from_json(old) == Lease("a", 1.0, 2.0, 3.0, acts=True)


def test_an_outage_is_said_first_then_once_a_minute_then_when_it_ends() -> None:
    from gamead_core.log_throttle import Outage

    outage = Outage(every=60.0)
    assert outage.recovered(0.0) is None  # nothing failed: nothing to say
    said = [outage.failed(t) for t in range(0, 200, 10)]  # a try every 10 s for 190 s
    assert said[0] == "" and said[6] == "still failing for 60 s (7 tries)"
    assert said[12] == "still failing for 120 s (13 tries)" and said[18] == "still failing for 180 s (19 tries)"
    assert sum(s is not None for s in said) == 4
    assert outage.recovered(200.0) == "works again after 200 s (20 failed tries)"
    assert outage.failed(210.0) == ""  # a new outage starts over


# --- a holder that died with expiresAt far ahead (attack31b F2) ----------------------------------------------


def test_a_lease_unchanged_for_longer_than_a_ttl_is_taken_whatever_its_expires_at() -> None:
    """A holder that died with ``expiresAt`` an hour ahead (a hand edit) and a written ttl of 3601 kept every other
    node a follower for that hour (attack31b F2): the follower trusts a written ttl up to 10 of its own TTLs
    (review31 R4), then its own clock says the lease has not changed for that long, so it is expired."""
    ahead = Lease("worker-deadnode-999", 900.0, 999.0, 4600.0)  # written ttl 3601
    assert lease_decision(1000.0, ahead, "b", TTL, unchanged_for=149.9).action == "follow"
    d = lease_decision(1000.0, ahead, "b", TTL, unchanged_for=150.1)
    assert d.action == "take" and d.write == Lease("b", 1000.0, 1000.0, 1015.0)
    follow = lease_decision(1000.0, ahead, "b", TTL, unchanged_for=149.0)
    assert follow.check_in == pytest.approx(min(5.0, 1.05))  # looks again just after its own limit


def test_a_dead_holder_whose_clock_was_ahead_is_taken_after_its_own_ttl() -> None:
    """A clock an hour ahead writes ``renewedAt`` ahead too: the written ttl is the holder's own (60), so a
    follower takes the lease once it stood unchanged for 60 s, not the hour."""
    ahead = Lease("worker-deadnode-999", 4500.0, 4600.0, 4660.0)
    assert lease_decision(1000.0, ahead, "b", TTL, unchanged_for=59.9).action == "follow"
    assert lease_decision(1000.0, ahead, "b", TTL, unchanged_for=60.1).action == "take"


def test_the_silence_limit_is_the_holders_written_ttl_between_the_followers_own_and_ten_of_them() -> None:
    from gamead_core.scaling.lease import silent_after

    assert silent_after(Lease("a", 0.0, 10.0, 3610.0), TTL) == 10 * TTL  # a hand edit: trusted 10 of its TTLs
    assert silent_after(Lease("a", 0.0, 10.0, 70.0), TTL) == 60.0  # a holder with interval 20 (renews every 20 s)
    assert silent_after(Lease("a", 0.0, 10.0, 16.0), TTL) == TTL  # a shorter one: the follower's own
    assert silent_after(Lease("a", 0.0, 10.0, 5.0), TTL) == TTL  # nonsense (ends before renewed): its own


def test_a_follower_with_a_shorter_interval_never_takes_a_renewing_holders_lease() -> None:
    """review31 R4: holder interval 20 (ttl 60, renews every 20 s), follower interval 5 (ttl 15). The follower
    judged it silent after 15 s and took the live lease (two leaders until the holder's next renewal)."""
    holder_ttl, follower_ttl = lease_ttl(20.0), lease_ttl(5.0)
    now = 1000.0
    theirs = Lease("api-slow-1", 0.0, now, now + holder_ttl)
    for unchanged in (15.5, 20.0, 25.0, 59.9):  # a renewal every 20 s resets it; even a late one is waited for
        d = lease_decision(now + unchanged, theirs, "api-fast-2", follower_ttl, unchanged_for=unchanged)
        assert d.action == "follow", (unchanged, d)
    # and the other way round: the slow node follows the fast one's renewals (every 5 s) as before
    fast = Lease("api-fast-2", 0.0, now, now + follower_ttl)
    assert lease_decision(now + 5.0, fast, "api-slow-1", holder_ttl, unchanged_for=5.0).action == "follow"
    # the holder gone: taken once its own ttl passed unchanged
    assert lease_decision(now + 60.1, theirs, "api-fast-2", follower_ttl, unchanged_for=60.1).action == "take"


def test_a_renewing_holder_is_followed_however_long_it_leads() -> None:
    """Each renewal is a new revision: ``unchanged_for`` restarts, so a live holder is never silent."""
    theirs = Lease("a", 0.0, 100.0, 115.0)
    for unchanged in (0.0, 4.9, 5.0, 14.99):
        assert lease_decision(101.0, theirs, "b", TTL, unchanged_for=unchanged).action == "follow"


def test_an_advice_only_candidate_takes_a_silent_acting_lease_once_long_gone() -> None:
    acting = Lease("up-host-1", 0.0, 10.0, 3610.0)
    assert lease_decision(20.0, acting, "api-host-2", TTL, acts=False, unchanged_for=15.1).action == "follow"
    late = lease_decision(20.0, acting, "api-host-2", TTL, acts=False, unchanged_for=10 * TTL + 3 * TTL + 0.1)
    assert late.action == "take" and late.write is not None and late.write.acts is False
