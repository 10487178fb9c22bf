"""The doctor's rule for a stuck leader lease (attack31b F2), alone: a live lease held by a node with no registry
entry, or renewed ahead, or with a TTL no node writes; never a registered holder (review31 R5)."""

from __future__ import annotations

from gamead_core.doctor.leases import absence_unproven, stuck_text
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


def test_a_registered_holder_is_never_stuck_whatever_its_fields() -> None:
    """review31 R5: a live holder heartbeats; if it stopped renewing, its followers take the lease by their own
    rule. The doctor must not release a live leader's lease (a leader flap)."""
    assert stuck_text("autoscaler", Lease("api-1", 900.0, 999.0, 4600.0), NOW, 15.0, ["api-1"]) is None
    assert stuck_text("autoscaler", Lease("api-1", 900.0, 1500.0, 1515.0), NOW, 15.0, ["api-1"]) is None


def test_a_live_holder_with_a_longer_interval_is_not_stuck() -> None:
    """review31 R5: an autoscaler with interval 30 writes ttl 90; a doctor on a node with interval 5 (ttl 15)
    called its expiresAt 90 s ahead "a clock ahead" and its repair released the live lease."""
    slow = Lease("api-slow-1", 900.0, 999.0, 999.0 + 90.0)
    assert stuck_text("autoscaler", slow, NOW, 15.0, ["api-slow-1"]) is None
    assert stuck_text("autoscaler", slow, NOW, 15.0, None) is None  # registry unreadable: judged by its fields
    assert stuck_text("autoscaler", Lease("up-host-1", 900.0, 999.0, 1089.0), NOW, 15.0, ["api-1"]) is None


def test_a_lease_renewed_ahead_or_with_an_impossible_ttl_is_named_when_its_holder_is_not_registered() -> None:
    ahead = stuck_text("autoscaler", Lease("up-host-1", 900.0, 4600.0, 4615.0), NOW, 15.0, ["api-1"])
    assert ahead is not None and "renewedAt lies 3600 s ahead" in ahead and "nobody scales" in ahead
    edited = stuck_text("autoscaler", Lease("up-host-1", 900.0, 999.0, 4600.0), NOW, 15.0, None)
    assert edited is not None and "3601 s) is longer than any node writes (at most 150 s)" in edited
    assert stuck_text("autoscaler", Lease("up-host-1", 900.0, 1001.5, 1016.5), NOW, 15.0, None) is None  # slack


def test_gamead_ups_own_autoscaler_registers_nothing_and_is_judged_by_its_fields_only() -> None:
    assert stuck_text("autoscaler", Lease("up-host-1", 900.0, 999.0, 1014.0), NOW, 15.0, ["api-1"]) is None
    assert stuck_text("autoscaler", Lease("up-host-1", 900.0, 999.0, 4600.0), NOW, 15.0, ["api-1"]) is not None


def test_a_node_missing_from_a_registry_bucket_younger_than_its_ttl_is_not_proven_gone() -> None:
    """flakes50A: a bucket recreated (lost with nats-server's memory store, `nats kv rm`) holds no entry of a live
    node until its next beat; one as old as its entries' max_age would hold it, had it beaten."""
    assert absence_unproven(NOW - 89.0, 90.0, NOW)
    assert not absence_unproven(NOW - 90.0, 90.0, NOW)
    assert not absence_unproven(None, 90.0, NOW)  # creation time unknown: the listing's word stands
    assert not absence_unproven(NOW - 1.0, 0.0, NOW)  # no max_age: entries never expire, absence is a deletion


def test_a_holder_missing_from_a_young_registry_bucket_is_not_called_gone_but_its_fields_are_judged() -> None:
    """lease51: the bucket too young to prove the holder gone (``gone_unproven``) defers only "the node is gone";
    flakes50A's rule deferred every reason, and a gone holder's lease with a TTL of 3600 s went unnamed."""
    gone = Lease("worker-gone", 900.0, 999.0, 1004.0)
    assert stuck_text("reaper", gone, NOW, 5.0, ["worker-1"], gone_unproven=True) is None
    edited = stuck_text("reaper", Lease("worker-gone", 900.0, 999.0, 4600.0), NOW, 5.0, ["worker-1"], True)
    assert edited is not None and "3601 s) is longer than any node writes (at most 50 s)" in edited, edited
    ahead = stuck_text("autoscaler", Lease("api-gone", 900.0, 4600.0, 4615.0), NOW, 15.0, ["api-1"], True)
    assert ahead is not None and "renewedAt lies 3600 s ahead" in ahead, ahead
    assert stuck_text("autoscaler", Lease("api-1", 900.0, 999.0, 4600.0), NOW, 15.0, ["api-1"], True) is None
