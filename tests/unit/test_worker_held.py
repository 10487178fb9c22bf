"""The worker's held deliveries and their ``started`` flags (issue 14.2; gamead_core.worker.held)."""

from __future__ import annotations

from gamead_core.registry import HeldAd
from gamead_core.registry.wire import NodeInfo
from gamead_core.worker.held import HeldAds


def _held(n: int, started: bool = True) -> HeldAd:
    return HeldAd(ad_id=f"ad{n}", delivery=f"{n}.1", ack_subject=f"$JS.ACK.x.{n}", started=started)


def test_a_suspect_ad_about_to_run_alone_clears_every_other_flag_and_the_wire_form_follows() -> None:
    held = HeldAds()
    for n in (1, 2, 3):
        held.add(("GAMEAD_ADS", n), _held(n))
    assert held.unmark_others(("GAMEAD_ADS", 2)) is True
    assert [h.started for h in held.listing()] == [False, True, False]
    assert [w["started"] for w in held.wire()] == [False, True, False]
    assert held.unmark_others(("GAMEAD_ADS", 2)) is False  # nothing left to clear: no announcement needed
    assert held.unmark(("GAMEAD_ADS", 2)) is True and not held.started(("GAMEAD_ADS", 2))
    held.pop(("GAMEAD_ADS", 1))
    assert [h.ad_id for h in held.listing()] == ["ad2", "ad3"] and len(held.wire()) == 2


def test_the_wire_form_is_what_the_heartbeat_carries() -> None:
    """The announcement between beats splices ``wire()`` into the beat's JSON: it must read back as the
    same held ads a full NodeInfo dump would carry."""
    held = HeldAds()
    held.add(("GAMEAD_ADS", 7), _held(7))
    doc = {"id": "w", "role": "worker", "host": "h", "pid": 1, "version": "v",
           "startedAt": "2026-11-30T00:00:00Z", "heartbeatAt": "2026-11-30T00:00:01Z", "holding": held.wire()}
    assert NodeInfo.model_validate(doc).holding == held.listing()
