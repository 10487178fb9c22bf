"""The doctor's rule for a suspect lease whose holder is registered (lease54), alone: named when the holder is
another process now, does not hold the lease's ad past the grace, or kept it past the longest it keeps one; never
while the holder holds its ad within its bound, nor for a released, expired or unregistered one (another rule's)."""

from __future__ import annotations

from datetime import datetime, timezone

from gamead_core.config import GameadSettings
from gamead_core.doctor.suspect_lease import grace, holder_bound, idle_text, idle_why
from gamead_core.registry import HeldAd, NodeInfo
from gamead_core.worker.suspect_turn import bound_of
from gamead_core.worker.turn_rule import Turn

NOW = 10_000.0
SETTINGS = GameadSettings()  # registry.ttl 10 (grace 12 s), task_timeout 60 (bound 138 s)


def _entry(pid: int = 101, *ads: str, task_timeout: float | None = None, worker_id: str = "w1",
           beat: float = NOW) -> NodeInfo:
    holding = [HeldAd(ad_id=ad, delivery=f"{n}.1", ack_subject="$JS.ACK.x") for n, ad in enumerate(ads, 1)]
    at = datetime.fromtimestamp(beat, timezone.utc)
    return NodeInfo(id=worker_id, role="worker", host="h", pid=pid, version="t", started_at=at, heartbeat_at=at,
                    holding=holding, task_timeout=task_timeout)


def _turn(age: float, bound: float | None = None, pid: int = 101) -> Turn:
    return Turn("w1", pid, "ad-1", NOW - age, bound_of(SETTINGS) if bound is None else bound)


def test_a_holder_that_holds_its_ad_within_its_bound_keeps_it() -> None:
    assert grace(SETTINGS) == 12.0 and holder_bound(_entry(), SETTINGS) == bound_of(SETTINGS) == 138.0
    assert idle_why(_turn(100), _entry(101, "ad-1"), NOW, SETTINGS) is None
    assert idle_why(_turn(100, 3600), _entry(101, "ad-9", "ad-1"), NOW, SETTINGS) is None  # within 138 s


def test_a_lease_young_released_expired_or_of_an_unlisted_holder_is_not_this_rules() -> None:
    assert idle_why(_turn(11), _entry(101), NOW, SETTINGS) is None  # its entry may not list it yet: the grace
    assert idle_why(_turn(50), _entry(101, beat=NOW - 49), NOW, SETTINGS) is None  # written before the take
    assert idle_why(Turn("", 101, "ad-1", NOW - 50, 138), _entry(101), NOW, SETTINGS) is None  # released
    assert idle_why(_turn(140), _entry(101), NOW, SETTINGS) is None  # expired: every worker takes it
    assert idle_why(_turn(50), None, NOW, SETTINGS) is None  # no entry: "the node is gone" (leases.stuck_text)
    assert idle_why(_turn(50), _entry(101, worker_id="w2"), NOW, SETTINGS) is None  # another node's entry
    assert idle_why(None, _entry(101), NOW, SETTINGS) is None


def test_a_holder_that_does_not_hold_its_ad_past_the_grace_is_named() -> None:
    why = idle_why(_turn(13), _entry(101, "ad-9"), NOW, SETTINGS)
    assert why is not None and "w1 (pid 101) does not hold ad ad-1 it was taken for 13 s ago" in why, why
    text = idle_text(_turn(13), _entry(101), NOW, SETTINGS)
    assert text is not None and text.startswith("held by w1 until ") and "gamead doctor --repair" in text, text


def test_a_holder_that_is_another_process_now_is_named_at_once() -> None:
    why = idle_why(_turn(1), _entry(111, "ad-1"), NOW, SETTINGS)
    assert why is not None and "is another process now (pid 111)" in why, why


def test_a_lease_kept_past_its_holders_bound_with_expires_at_further_ahead_is_named() -> None:
    """A hand edit or a bug (``expiresAt`` far ahead) naming a live worker that holds the ad: workers trust it up to
    10 of their bound (1,380 s); once its holder's bound (by its own task_timeout) passed, no run needs it."""
    assert idle_why(_turn(139, 3600), _entry(101, "ad-1"), NOW, SETTINGS) is None  # within the slack
    why = idle_why(_turn(141, 3600), _entry(101, "ad-1"), NOW, SETTINGS)
    assert why is not None and "taken 141 s ago for ad ad-1, longer than its holder w1 (pid 101) keeps it (138 s" in why
    quick = _entry(101, "ad-1", task_timeout=10)  # its own task_timeout (the entry's): 2 × 10 + 8 + 10 = 38 s
    assert holder_bound(quick, SETTINGS) == 38.0
    assert idle_why(_turn(41, 3600), quick, NOW, SETTINGS) is not None
