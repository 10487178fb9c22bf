"""lease54: a suspect lease held by a registered worker that runs no suspect ad with it (a release lost, a hand
edit naming a live worker) kept every suspect ad of the fleet handed back for up to 10 of its bound, and `gamead
doctor` said every invariant held (a registered holder was never stuck). It names one whose holder does not hold its
ad, `--repair` releases it at once (not after its whole bound: it is never renewed), and one whose holder holds its
ad is left alone. The doctor runs in this process on a real nats-server; no worker runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import nats

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import utcnow
from gamead_core.registry import HeldAd, NodeInfo
from gamead_core.worker.turn_rule import Turn


def _worker(worker_id: str, pid: int, *ads: str) -> NodeInfo:
    now = utcnow()
    holding = [HeldAd(ad_id=ad, delivery=f"{n}.1", ack_subject=f"$JS.ACK.x.y.1.{n}.{n}.0.0")
               for n, ad in enumerate(ads, 1)]
    return NodeInfo(id=worker_id, role="worker", host="h", pid=pid, version="t", started_at=now, heartbeat_at=now,
                    holding=holding)


def _stuck(report: dict[str, Any]) -> dict[str, Any]:
    return next((f for f in report["findings"] if f["kind"] == "lease_stuck"), {"sample": [], "details": {}})


def test_a_suspect_lease_whose_registered_holder_does_not_hold_its_ad_is_named_and_released_at_once(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    from gamead_core.config import GameadSettings
    from gamead_core.doctor import diagnose
    from gamead_core.doctor.repair import RepairOps
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.registry import Registry
    from gamead_core.store.ads import AdStore
    from gamead_core.worker.suspect_turn import bound_of

    server = fresh_nats()
    settings = GameadSettings(doctor={"settle": 0.2}, registry={"ttl": 60.0})  # entries live on; grace 62 s
    bound = bound_of(settings)  # the old repair waited this long (unchanged for its ttl)

    async def main() -> None:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            await ensure_topology(js, settings)
            registry = Registry(nc, js, settings.registry)
            await registry.put(_worker("w1", 101, "ad-other"))  # live; ran ad-1 alone, settled it, release lost
            kv = await js.key_value(names.LEASES_BUCKET)
            await kv.put(names.SUSPECT_LEASE, Turn("w1", 101, "ad-1", time.time() - 90, bound).to_json())
            found = await diagnose(nc, js, settings)
            stuck = _stuck(found.report.wire(10))
            assert stuck["sample"] == ["suspect lease"], found.report.wire(10)  # before: not named (registered)
            detail = stuck["details"]["suspect lease"]
            assert "w1 (pid 101) does not hold ad ad-1" in detail and "gamead doctor --repair" in detail, detail
            ops = RepairOps(nc, js, settings, store=AdStore(nc, js))
            marks = [await asyncio.wait_for(ops.act(a, "repairjob"), 60) for a in found.actions
                     if a[0] == "lease_stuck"]
            assert marks == ["R"]  # released at once (before: after the lease's whole bound, unchanged)
            left = Turn.from_json((await kv.get(names.SUSPECT_LEASE)).value)
            assert left is not None and left.holder == "", left  # free to every worker
            assert _stuck((await diagnose(nc, js, settings)).report.wire(10))["sample"] == []

            await registry.put(_worker("w2", 202, "ad-2"))  # live, and holds the ad it took the lease for
            await kv.put(names.SUSPECT_LEASE, Turn("w2", 202, "ad-2", time.time() - 90, bound).to_json())
            running = (await diagnose(nc, js, settings)).report.wire(10)
            assert _stuck(running)["sample"] == [], running["findings"]  # its holder runs ad-2 with it
            revision = (await kv.get(names.SUSPECT_LEASE)).revision
            kept = await asyncio.wait_for(ops.act(["lease_stuck", names.SUSPECT_LEASE, revision], "repairjob"), 60)
            assert kept == "h"  # a repair never releases it (left: healed)
            assert (await kv.get(names.SUSPECT_LEASE)).revision == revision
        finally:
            await nc.close()

    asyncio.run(main())
