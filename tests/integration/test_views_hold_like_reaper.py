"""The node views hold a node across a gap in their reading, and never call a clean stop ``gone`` (attack44b F1, F3).

The views (``/v1/workers``, ``gamead top``, ``gamead_workers{state}``) had a rule of their own: after a NATS outage
past ``registry.ttl`` (nats-server frozen, then restarted: its registry, a memory store, lost) every node's last beat
was more than ``registry.ttl`` old, so each vanished node went straight to ``gone`` (5 of 5 live nodes, one read),
while the reaper holds its view over a reconnection and judges only nodes still absent ``registry.ttl`` after it is
back. And the views knew a clean stop by its delete mark only, the reaper by :meth:`Registry.stopped` (the mark, or
the clean-stop note): a stop whose mark was lost was listed ``gone`` for a minute. Now the views keep the reaper's
view (:mod:`gamead_core.stats.gone_watch`). Real nats-server; the sampler's clock is set (``clocked_sampler``)."""

from __future__ import annotations

import asyncio

import nats

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry.nodes import node_key
from gamead_core.registry.stops import StopNotes
from gamead_core.shutdown import close_for_good
from tests.integration.test_node_views import clocked_sampler, scraped_workers, server, worker_entry
from tests.waits import until

__all__ = ["server"]  # the fixture, shared with test_node_views

DEADLINE = 30.0  #: seconds any one wait may take


def test_nodes_that_vanished_across_a_nats_restart_are_held_not_gone(server: EmbeddedNats) -> None:
    """Workers ``w-1`` and ``w-2`` beat and the sampler lists them; nats-server is killed and started again (the
    registry empty) and the sampler reads 5 s after their last beats (``registry.ttl`` 2 s: as after a freeze). Both
    are listed with their last entry, none ``gone`` (``gamead_workers{state="gone"}`` 0); ``w-1`` beats again and is
    live; ``w-2``, still absent 2 s after the reads came back, is ``gone`` then (the reaper's rule). Without the fix
    (gone_watch.py before this change): both ``gone`` at the first read after the restart (2 of 2, gauge 2)."""
    async def scenario() -> list[object]:
        nc = await nats.connect(server.url, reconnect_time_wait=0.1, max_reconnect_attempts=-1)
        try:
            registry, sampler, clock = clocked_sampler(nc)  # ttl 2 s, heartbeat 0.5 s

            async def states(at: float) -> dict[str, str]:
                clock.at = at
                await sampler.sample()
                return {n["id"]: n["state"] for n in sampler.workers_payload()["items"]}

            t = clock.at
            for node in ("w-1", "w-2"):
                await registry.put(worker_entry(node, now=t, started=t - 100))
            first = await states(t)
            server.kill()
            await until(lambda: not nc.is_connected, timeout=DEADLINE, what="the connection down")
            await asyncio.to_thread(server.start)
            await until(lambda: nc.is_connected, timeout=DEADLINE, what="the connection back")

            async def read_back() -> dict[str, str] | None:  # the first sample that read the (new) registry
                got = await states(t + 5.0)
                return got if sampler.nodes_ok else None

            after = await until(read_back, timeout=DEADLINE, what="a registry read after the restart")
            gauge = (await scraped_workers(sampler)).get("gone", 0.0)
            await registry.put(worker_entry("w-1", now=t + 5.5, started=t - 100))  # w-1 beats again; w-2 does not
            again = await states(t + 5.5)
            await registry.put(worker_entry("w-1", now=t + 6.5, started=t - 100))
            await states(t + 6.5)  # reads less than registry.ttl - heartbeat apart: no gap between them
            await registry.put(worker_entry("w-1", now=t + 7.4, started=t - 100))
            judged = await states(t + 7.6)  # 2 s after the reads came back (t + 5)
            return [first, after, gauge, again, judged]
        finally:
            await close_for_good(nc)  # its server may be gone (a restart that failed): bounded (closes52)

    first, after, gauge, again, judged = asyncio.run(scenario())
    assert first == {"w-1": "idle", "w-2": "idle"}, first
    assert "gone" not in after.values() and set(after) == {"w-1", "w-2"}, after  # type: ignore[union-attr]
    assert gauge == 0, gauge
    assert again["w-1"] == "idle" and again.get("w-2") != "gone", again  # type: ignore[index,union-attr]
    assert judged == {"w-1": "idle", "w-2": "gone"}, judged


def test_a_clean_stop_told_by_its_note_alone_is_never_gone(server: EmbeddedNats) -> None:
    """Worker ``c-1`` beats and is listed; it stops cleanly but its delete mark is lost (its entry purged from the
    registry stream, no mark: a registry leader election ate it), its clean-stop note written. Past its heartbeat +
    ``registry.ttl`` it is not listed and not ``gone`` (gauge 0): the reaper's :meth:`Registry.stopped` says it
    stopped. Without the fix (the views' lookup knew the mark only): ``gone`` (1 of 1, gauge 1)."""
    async def scenario() -> tuple[dict[str, str], dict[str, str], float]:
        nc = await nats.connect(server.url)
        try:
            registry, sampler, clock = clocked_sampler(nc)
            await ensure_topology(nc.jetstream(), sampler.settings)  # gamead_stops among it

            async def states(at: float) -> dict[str, str]:
                clock.at = at
                await sampler.sample()
                return {n["id"]: n["state"] for n in sampler.workers_payload()["items"]}

            t = clock.at
            entry = worker_entry("c-1", now=t)
            await registry.put(entry)
            first = await states(t)
            await StopNotes(nc.jetstream()).note(entry)
            await nc.jetstream().purge_stream(names.kv_stream(names.REGISTRY_BUCKET),
                                              subject=f"{names.kv_prefix(names.REGISTRY_BUCKET)}{node_key('c-1')}")
            await states(t + 0.5)
            later = await states(t + 2.6)
            return first, later, (await scraped_workers(sampler)).get("gone", 0.0)
        finally:
            await nc.close()

    first, later, gauge = asyncio.run(scenario())
    assert first == {"c-1": "idle"}, first
    assert later == {}, later
    assert gauge == 0, gauge


