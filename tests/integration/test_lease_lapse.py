"""Drill attack25 finding 8: `gamead up` frozen 30 s lost the autoscaler lease (`scale status`: leader none), then
renewed its own expired lease on waking and `scale status` said `leader up-vm-3394 (since 00:18:09 UTC)` as if
leadership never lapsed. A lease keeper on a real nats-server with fake clocks: a renewal keeps the term's start;
a step after the lease expired starts a new term (``acquiredAt`` now), counts it, records the lapse and signals
the change, so the autoscaler restarts its "leader since" and names the lapse in its next decision."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import nats

from gamead_core.config.settings import AutoscalerSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.scaling.lease import Lease, LeaseKeeper
from gamead_core.scaling.status import status_document


def _on_a_keeper(server: EmbeddedNats, bucket: str,
                 body: Callable[[LeaseKeeper, Any, list[float], list[float]], Awaitable[None]]) -> None:
    """Run ``body(keeper, kv, wall, mono)``: a lease keeper ``up-1`` (ttl 15 s) on a fresh bucket ``bucket`` of
    ``server``, its clocks at 1000 (wall) and 50 (monotonic), moved by hand."""
    wall, mono = [1000.0], [50.0]

    async def run() -> None:
        nc = await nats.connect(server.url)
        try:
            kv = await nc.jetstream(timeout=5).create_key_value(bucket=bucket, history=1)
            await body(LeaseKeeper(kv, "up-1", 15.0, clock=lambda: wall[0], monotonic=lambda: mono[0]), kv, wall, mono)
        finally:
            await nc.close()

    asyncio.run(run())


def test_a_lapsed_lease_taken_again_starts_a_new_term(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    async def body(keeper: LeaseKeeper, kv: Any, wall: list[float], mono: list[float]) -> None:
        await keeper.step()
        assert keeper.is_leader and keeper.term == 1 and keeper.seen is not None
        assert keeper.seen.acquired_at == 1000.0
        keeper.changed.clear()
        wall[0] += 5.0
        mono[0] += 5.0
        await keeper.step()  # an ordinary renewal: the same term
        assert keeper.seen.acquired_at == 1000.0 and keeper.term == 1 and not keeper.changed.is_set()
        assert keeper.lapse is None
        wall[0] += 30.0  # frozen 30 s: the lease (renewed at 1005, ttl 15) expired at 1020
        mono[0] += 30.0
        assert not keeper.is_leader
        await keeper.step()
        assert keeper.is_leader and keeper.term == 2 and keeper.changed.is_set()
        assert keeper.seen.acquired_at == 1035.0  # leader since the re-acquisition, not since 1000
        assert keeper.lapse == (1020.0, 1035.0)
        stored = await kv.get("autoscaler")
        lease = Lease.from_json(stored.value)
        assert lease is not None and lease.acquired_at == 1035.0
        term, note = keeper.new_term(1035.0)  # what the autoscaler's next decision names
        assert term == 2 and note.startswith("leadership lapsed 00:17:00 UTC to 00:17:15 UTC "  # polish47: were ISO
                                             "(15 s without renewing the lease"), note
        doc = status_document(None, lease, None, now=1036.0, settings=AutoscalerSettings(), node_id="up-1")
        assert doc["leader"]["since"].startswith("1970-01-01T00:17:15"), doc["leader"]

    _on_a_keeper(fresh_nats(), "gamead_leases_lapse", body)


def test_a_lease_expired_on_the_servers_clock_while_still_held_here_never_lapses_backwards(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """load57: at load 35-52 the autoscaler said "leadership lapsed 02:23:29 UTC to 02:23:28 UTC (-0 s without
    renewing the lease…)": its lease had expired on nats-server's clock while its own monotonic deadline had not
    passed yet (a slow read, a clock sample's error), and the lapse began at that later local deadline. The lapse
    now never ends before it begins: it is at most the time up to the re-acquisition, never negative."""
    async def body(keeper: LeaseKeeper, _kv: Any, wall: list[float], mono: list[float]) -> None:
        await keeper.step()
        wall[0] += 16.0  # expired at 1015 on the server's clock …
        mono[0] += 14.0  # … while this process's deadline (64) is still a second away
        assert keeper.is_leader
        await keeper.step()
        assert keeper.term == 2 and keeper.lapse is not None
        begun, ended = keeper.lapse
        assert begun <= ended == 1016.0, keeper.lapse
        _, note = keeper.new_term(1016.0)
        assert "(0 s without renewing" in note and "-" not in note.split("(")[1], note

    _on_a_keeper(fresh_nats(), "gamead_leases_early", body)
