"""Drill attack31b F2: a lease whose holder died with ``expiresAt`` an hour ahead (a clock ahead, a hand edit) kept
every other node a follower for that hour: nobody reaped, healed the DLQ or scaled. Two lease keepers on a real
nats-server, real clocks: a follower takes over a lease that has not changed for longer than its TTL, whatever its
``expiresAt`` says, and never the lease of a live holder that renews."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import nats

from gamead_core.embedded import EmbeddedNats
from gamead_core.scaling.lease import Lease, LeaseKeeper
from tests.waits import until

TTL = 1.5  #: seconds; a holder renews every 0.5 s


async def _run(keeper: LeaseKeeper, stop: asyncio.Event) -> None:
    await keeper.run(stop)


def test_a_dead_holders_lease_far_ahead_is_taken_and_a_live_holders_never(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()

    async def run() -> None:
        nc = await nats.connect(server.url)
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        try:
            kv = await nc.jetstream(timeout=5).create_key_value(bucket="gamead_leases_ahead", history=1)
            # a live holder that renews: the follower never takes it, over many renewals
            holder = LeaseKeeper(kv, "worker-live-1", TTL, key="reaper")
            follower = LeaseKeeper(kv, "worker-live-2", TTL, key="reaper")
            tasks.append(asyncio.create_task(_run(holder, stop)))
            await until(lambda: holder.is_leader, timeout=10, what="the first keeper leads")
            tasks.append(asyncio.create_task(_run(follower, stop)))
            led: list[str] = []
            first = (await kv.get("reaper")).revision
            deadline = time.monotonic() + 60
            while (await kv.get("reaper")).revision < first + 12:  # ≥ 4 TTLs of renewals
                assert time.monotonic() < deadline, "the holder stopped renewing"
                if follower.is_leader:
                    led.append("follower")
                await asyncio.sleep(0.05)
            stored = Lease.from_json((await kv.get("reaper")).value)
            assert stored is not None and stored.holder == "worker-live-1" and not led, (stored, led)
            assert follower.leader == "worker-live-1"

            # a holder gone with expiresAt an hour ahead and a ttl of 3600 (the drill's hand-written lease): a
            # follower trusts a written ttl up to 10 of its own (review31 R4), here 10 × 0.5 s
            t = time.time()
            dead = Lease("worker-deadnode-999", t - 100, t - 1, t + 3600)
            await kv.put("autoscaler", dead.to_json())
            taker = LeaseKeeper(kv, "worker-live-3", 0.5, key="autoscaler")
            tasks.append(asyncio.create_task(_run(taker, stop)))
            await until(lambda: taker.is_leader, timeout=30, what="the lease of a dead holder is taken over")
            now_held = Lease.from_json((await kv.get("autoscaler")).value)
            assert now_held is not None and now_held.holder == "worker-live-3"
            assert now_held.expires_at < time.time() + 2 * TTL  # its own ttl, not the hour
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await nc.close()

    asyncio.run(run())


def test_keepers_of_different_intervals_never_take_each_others_live_lease(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """review31 R4: a follower judged a lease silent after the shorter of its own TTL and the holder's, so one with
    interval 5 (ttl 15) took the lease of a live holder with interval 20 (ttl 60, renewing every 20 s): two
    leaders. Here ttl 3 (renews every 1 s) and ttl 0.75: over many of the holder's renewals, neither takes the
    other's live lease; the slow one leads first, then the fast one once the slow one stops cleanly."""
    server = fresh_nats()

    async def run() -> None:
        nc = await nats.connect(server.url)
        stop, stop_slow = asyncio.Event(), asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        try:
            kv = await nc.jetstream(timeout=5).create_key_value(bucket="gamead_leases_mixed", history=1)
            slow = LeaseKeeper(kv, "api-slow-1", 3.0)
            fast = LeaseKeeper(kv, "api-fast-2", 0.75)
            tasks.append(asyncio.create_task(_run(slow, stop_slow)))
            await until(lambda: slow.is_leader, timeout=10, what="the slow keeper leads")
            tasks.append(asyncio.create_task(_run(fast, stop)))
            first = (await kv.get("autoscaler")).revision
            both: list[float] = []
            deadline = time.monotonic() + 60
            while (await kv.get("autoscaler")).revision < first + 6:  # 6 renewals, 6 s: 8 of the fast one's TTLs
                assert time.monotonic() < deadline, "the slow holder stopped renewing"
                if fast.is_leader:
                    both.append(time.monotonic())
                await asyncio.sleep(0.05)
            stored = Lease.from_json((await kv.get("autoscaler")).value)
            assert stored is not None and stored.holder == "api-slow-1" and not both, (stored, len(both))
            assert fast.leader == "api-slow-1"

            stop_slow.set()  # a clean stop releases it: the fast one leads, and the slow one, back, follows it
            await until(lambda: fast.is_leader, timeout=10, what="the fast keeper leads once the slow one stopped")
            again = LeaseKeeper(kv, "api-slow-1b", 3.0)
            tasks.append(asyncio.create_task(_run(again, stop)))
            first = (await kv.get("autoscaler")).revision
            while (await kv.get("autoscaler")).revision < first + 12:  # 12 renewals of the fast one: 3 s
                assert time.monotonic() < deadline, "the fast holder stopped renewing"
                assert not again.is_leader, "the slow keeper took the fast one's live lease"
                await asyncio.sleep(0.05)
            stored = Lease.from_json((await kv.get("autoscaler")).value)
            assert stored is not None and stored.holder == "api-fast-2"
        finally:
            stop.set()
            stop_slow.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await nc.close()

    asyncio.run(run())
