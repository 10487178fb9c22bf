"""The doctor's rule for a stuck leader lease (attack31b F2), alone: a live lease held by a node with no registry
entry, or whose expiresAt lies further ahead than its TTL; never a live, registered holder within its TTL."""

from __future__ import annotations

from gamead_core.doctor.leases import stuck_text
from gamead_core.scaling.lease import Lease

NOW = 1000.0


def test_a_registered_holder_within_its_ttl_is_not_stuck() -> None:
    lease = Lease("worker-1", 900.0, 999.0, 1004.0)
    assert stuck_text("reaper", lease, NOW, 5.0, ["worker-1", "api-1"]) is None
    assert stuck_text("reaper", lease, NOW, 5.0, None) is None  # registry unreadable: not judged by it


def test_released_or_expired_leases_are_not_stuck() -> None:
    assert stuck_text("reaper", None, NOW, 5.0, []) is None
    assert stuck_text("reaper", Lease("", 900.0, 990.0, 990.0), NOW, 5.0, []) is None
    assert stuck_text("reaper", Lease("worker-gone", 900.0, 990.0, 995.0), NOW, 5.0, []) is None  # nodes take it


def test_a_holder_with_no_registry_entry_is_named_with_what_waits() -> None:
    text = stuck_text("reaper", Lease("worker-gone", 900.0, 999.0, 1004.0), NOW, 5.0, ["worker-1"])
    assert text is not None and "worker-gone" in text and "no live registry entry" in text
    assert "nobody recovers a dead node's ads" in text and "gamead doctor --repair" in text


def test_an_expires_at_further_ahead_than_the_ttl_is_named_even_for_a_registered_holder() -> None:
    text = stuck_text("autoscaler", Lease("api-1", 900.0, 999.0, 4600.0), NOW, 15.0, ["api-1"])
    assert text is not None and "3600 s ahead, more than its TTL (15 s)" in text and "nobody scales" in text
    assert stuck_text("autoscaler", Lease("api-1", 900.0, 999.0, 1016.5), NOW, 15.0, ["api-1"]) is None  # slack


def test_gamead_ups_own_autoscaler_registers_nothing_and_is_judged_by_its_expiry_only() -> None:
    assert stuck_text("autoscaler", Lease("up-host-1", 900.0, 999.0, 1014.0), NOW, 15.0, ["api-1"]) is None
    assert stuck_text("autoscaler", Lease("up-host-1", 900.0, 999.0, 4600.0), NOW, 15.0, ["api-1"]) is not None
