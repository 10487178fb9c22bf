"""Drill attack31b F2: a `reaper` lease held by a node that is gone, its `expiresAt` an hour ahead, and an
`autoscaler` lease held by an API node with no registry entry: `gamead doctor` said "every invariant holds". It
names both (`lease_stuck`, with the holder and what waits), `--repair`'s action releases each by compare-and-set,
and the next run is clean. The doctor runs in this process on a real nats-server; no node runs (one would take the
leases over by itself)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import nats

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.scaling.lease import Lease
from tests.waits import registry_older_than_ttl, until


def test_a_lease_held_by_a_gone_node_is_named_and_released_by_the_repair(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    from gamead_core.config import GameadSettings
    from gamead_core.doctor import diagnose
    from gamead_core.doctor.repair import RepairOps
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.store.ads import AdStore

    server = fresh_nats()
    # intervals short enough that the repair's wait (each lease unchanged for its own ttl, review31 R5) is seconds
    settings = GameadSettings(doctor={"settle": 0.2}, autoscaler={"interval": 0.2},
                              registry={"heartbeat_interval": 0.1, "ttl": 1.0})

    async def main() -> tuple[dict[str, Any], str, dict[str, Any], dict[str, Lease | None]]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            await ensure_topology(js, settings)
            # a holder missing from a registry bucket younger than its ttl may be live (its entry went with the
            # bucket: flakes50A): the doctor names it gone only once the bucket is older
            await registry_older_than_ttl(js)
            kv = await js.key_value(names.LEASES_BUCKET)
            t = time.time()
            await kv.put(names.REAPER_LEASE, Lease("worker-deadnode-999", t - 100, t - 1, t + 3600).to_json())
            await kv.put("autoscaler", Lease("api-gone-1", t - 100, t - 1, t + 7).to_json())  # ttl 8: at most 6 + 2
            found = await diagnose(nc, js, settings)
            ops = RepairOps(nc, js, settings, store=AdStore(nc, js))
            marks = "".join([await ops.act(item, "repairjob") for item in found.actions])
            after = await diagnose(nc, js, settings)
            left = {k: Lease.from_json((await kv.get(k)).value) for k in (names.REAPER_LEASE, "autoscaler")}
            return found.report.wire(10), marks, after.report.wire(10), left
        finally:
            await nc.close()

    before, marks, after, left = asyncio.run(main())
    stuck = next(f for f in before["findings"] if f["kind"] == "lease_stuck")
    assert before["ok"] is False and stuck["count"] == 2, before
    assert sorted(stuck["sample"]) == ["autoscaler lease", "reaper lease"]
    reaper = stuck["details"]["reaper lease"]
    assert "worker-deadnode-999" in reaper and "longer than any node writes" in reaper and "heals the DLQ" in reaper
    scaler = stuck["details"]["autoscaler lease"]
    assert "api-gone-1" in scaler and "no live registry entry" in scaler and "gamead doctor --repair" in scaler
    assert marks == "RR"
    assert after["ok"] is True, after
    assert all(lease is not None and lease.holder == "" for lease in left.values()), left


def test_a_live_leader_with_a_longer_interval_is_not_stuck_and_the_repair_never_releases_a_renewing_lease(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """review31 R5: a doctor on a node with interval 5 (ttl 15) judged an interval-30 leader's lease (ttl 90) "a
    clock ahead" (exit 1), and the repair released the live lease (a leader flap). Now the lease is judged by its
    own fields, and the repair releases only a lease that stood unchanged for its own ttl: a renewing holder keeps
    it."""
    from gamead_core.config import GameadSettings
    from gamead_core.doctor import diagnose
    from gamead_core.doctor.repair import RepairOps
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.scaling.lease import LeaseKeeper
    from gamead_core.store.ads import AdStore

    server = fresh_nats()
    settings = GameadSettings(doctor={"settle": 0.2})  # autoscaler.interval 5: ttl 15

    async def main() -> tuple[dict[str, Any], str, Lease | None]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        stop = asyncio.Event()
        try:
            await ensure_topology(js, settings)
            kv = await js.key_value(names.LEASES_BUCKET)
            t = time.time()
            await kv.put("autoscaler", Lease("up-slow-1", t - 100, t, t + 90).to_json())  # interval 30, renewed now
            found = await diagnose(nc, js, settings)
            # a renewing holder (every 0.5 s) whose lease a stale action names: the repair waits, sees it renewed
            keeper = LeaseKeeper(kv, "up-fast-2", 1.5)
            await kv.put("autoscaler", Lease("", t, t, t).to_json())
            task = asyncio.create_task(keeper.run(stop))
            await until(lambda: keeper.is_leader, timeout=10, what="the keeper to lead")
            revision = (await kv.get("autoscaler")).revision
            mark = await RepairOps(nc, js, settings, store=AdStore(nc, js)).act(
                ["lease_stuck", "autoscaler", revision], "repairjob")
            left = Lease.from_json((await kv.get("autoscaler")).value)
            stop.set()
            await task
            return found.report.wire(10), mark, left
        finally:
            stop.set()
            await nc.close()

    report, mark, left = asyncio.run(main())
    assert not [f for f in report["findings"] if f["kind"] == "lease_stuck"], report
    assert mark == "h" and left is not None and left.holder == "up-fast-2", (mark, left)


def test_a_holder_missing_from_a_just_made_registry_is_not_called_gone_but_a_lease_far_ahead_is_named_at_once(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """lease51: a registry bucket younger than ``registry.ttl`` (just made: lost with a restarted nats-server's memory
    store, `nats kv rm`) holds no entry of a live node until its next beat, so a holder missing from it is not yet
    called gone (before: the live leader answering the doctor was named `lease_stuck`, "the node is gone"); a lease
    with a TTL no node writes, or a job's an hour ahead, is named at once all the same (flakes50A's rule, reverted,
    deferred those too). Once the bucket is older than its ttl, the holder and runner missing from it are gone."""
    from gamead_core.config import GameadSettings
    from gamead_core.doctor import diagnose
    from gamead_core.jobs.store import JobStore
    from gamead_core.queue.topology import ensure_topology
    from tests.integration.test_job_lease_ahead import _job

    server = fresh_nats()
    young = GameadSettings(doctor={"settle": 0.2}, registry={"heartbeat_interval": 0.1, "ttl": 60.0})
    old = GameadSettings(doctor={"settle": 0.2}, registry={"heartbeat_interval": 0.1, "ttl": 1.0})

    async def main() -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            await ensure_topology(js, young)  # its registry bucket lives 60 s: younger than that all along
            kv = await js.key_value(names.LEASES_BUCKET)
            t = time.time()
            await kv.put(names.REAPER_LEASE, Lease("worker-deadnode-999", t - 100, t - 1, t + 3600).to_json())
            await kv.put("autoscaler", Lease("api-gone-1", t - 100, t - 1, t + 60).to_json())  # ttl 61: at most 150
            store = await JobStore.open(js)
            ahead, gone = _job(), _job(runner="deadhost-4242-abcdef")
            gone.lease_until = t + 60
            for job in (ahead, gone):
                await store.create(job)
            first = (await diagnose(nc, js, young)).report.wire(10)
            await js.delete_key_value(names.REGISTRY_BUCKET)  # made again, living 1 s: older than that soon
            await ensure_topology(js, old)
            await registry_older_than_ttl(js)
            then = (await diagnose(nc, js, old)).report.wire(10)
            return first, then, [ahead.id, gone.id]
        finally:
            await nc.close()

    first, then, (ahead, gone) = asyncio.run(main())
    kinds = {f["kind"]: f for f in first["findings"]}
    assert set(kinds) == {"lease_stuck", "job_lease_expired"}, first["findings"]
    assert kinds["lease_stuck"]["sample"] == ["reaper lease"], kinds["lease_stuck"]  # before: the autoscaler's too
    assert "longer than any node writes" in kinds["lease_stuck"]["details"]["reaper lease"]
    assert kinds["job_lease_expired"]["sample"] == [ahead], kinds["job_lease_expired"]  # before: the gone one too
    kinds = {f["kind"]: f for f in then["findings"]}
    assert sorted(kinds["lease_stuck"]["sample"]) == ["autoscaler lease", "reaper lease"], then["findings"]
    assert "no live registry entry" in kinds["lease_stuck"]["details"]["autoscaler lease"]
    assert sorted(kinds["job_lease_expired"]["sample"]) == sorted([ahead, gone]), then["findings"]
    assert "api-deadhost-4242" in kinds["job_lease_expired"]["details"][gone]
