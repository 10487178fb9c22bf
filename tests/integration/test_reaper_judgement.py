"""The reaper judges a death only between two good reads of one registry (review27 F2). The registry bucket is a
memory stream: a restarted nats-server starts it empty, so the reaper's first read after the restart missed every
node that had not beaten again yet, and it logged "worker … died" for live workers (recovering the ads of those
holding some). Real nats-server, restarted; nodes beat through gamead's own heartbeat loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import nats
import pytest
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import NodeInfo, Registry
from gamead_core.registry.beat import run_heartbeat
from gamead_core.scaling.lease import Lease
from gamead_core.shutdown import close_for_good
from gamead_core.store.ads import AdStore
from gamead_core.worker.reaper_loop import run_reaper
from tests.waits import until

SETTINGS = GameadSettings.model_validate({"registry": {"ttl": 2.0, "heartbeat_interval": 0.5}})


def test_a_nats_restart_names_no_live_worker_dead_and_a_real_death_after_it_is_still_named(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture,
) -> None:
    server = fresh_nats()

    def said(node: str) -> bool:
        # an expired entry "stopped answering" (dead, frozen or hung: attack31c F4), a new pid "died"
        return any(f"worker {node} died" in r.getMessage() or f"worker {node} stopped answering" in r.getMessage()
                   for r in caplog.records)

    async def scenario(opened: list[nats.NATS]) -> None:
        nc = await nats.connect(server.url, reconnect_time_wait=0.2, max_reconnect_attempts=-1)
        opened.append(nc)
        js = nc.jetstream()
        await ensure_topology(js, SETTINGS)
        registry = Registry(nc, js, SETTINGS.registry)
        started = utcnow()
        stop, dead_stop = asyncio.Event(), asyncio.Event()
        beats: dict[str, tuple[nats.NATS, asyncio.Task[None]]] = {}
        for node in ("live-1", "dead-1"):
            nc_ = await nats.connect(server.url, reconnect_time_wait=0.2, max_reconnect_attempts=-1)
            opened.append(nc_)
            reg = Registry(nc_, nc_.jetstream(), SETTINGS.registry)

            def snap(node: str = node) -> NodeInfo:
                return NodeInfo(id=node, role="worker", host="h", pid=4242, version="t", started_at=started,
                                heartbeat_at=utcnow(), holding=[], ack_wait=30)

            beats[node] = (nc_, asyncio.create_task(run_heartbeat(reg, snap, 0.5, stop if node == "live-1" else
                                                                  dead_stop)))
        reaper = asyncio.create_task(run_reaper(nc, js, await AdStore.open(nc, js), registry, SETTINGS, "r", stop))

        async def listed() -> set[str]:
            return {n.id for n in await registry.list()}

        ids: set[str] = set()

        async def looked(want: Callable[[], object]) -> object:
            """``want()``, after a look at the registry (into ``ids``) and the topology made again, as the API's
            topology watch does after a restart; a look that fails (NATS coming back) is made again at the next poll."""
            with contextlib.suppress(Exception):
                ids.clear()
                ids.update(await listed())
                await ensure_topology(js, SETTINGS)
            return want()

        await until(lambda: looked(lambda: {"live-1", "dead-1"} <= ids), timeout=20, what="both workers listed")
        # the reaper's own view holds both before the restart: it leads and a later renewal shows a round (its
        # listing) done. Without it a first lease step cut by the restart (5 s unanswered at load 30) left it
        # no read of dead-1 at all: dead-1 beat again and expired before the reaper's first read (2 of 50 runs)
        renewals: list[float] = []
        await until(_after(lambda: _note_renewal(js, renewals), lambda: len(set(renewals)) >= 2), timeout=20,
                    interval=0.1, what="the reaper leading, a round of it done")
        server.stop()
        server.start()
        await until(lambda: looked(lambda: {"live-1", "dead-1"} <= ids), timeout=30, interval=0.1,
                    what="both workers listed again, in a new bucket")
        beats["dead-1"][1].cancel()  # dies now: no delete, its entry expires after the ttl
        await until(lambda: looked(lambda: said("dead-1")), timeout=30, interval=0.1, what="the reaper to name dead-1")
        stop.set()
        await asyncio.gather(reaper, beats["live-1"][1], return_exceptions=True)

    async def main() -> None:
        opened: list[nats.NATS] = []
        try:
            await scenario(opened)
        finally:  # their server restarted, or not if that failed: bounded either way (closes52)
            for nc in opened:
                await close_for_good(nc)

    with caplog.at_level(logging.WARNING, logger="gamead_core.worker.reaper"):
        asyncio.run(main())
    assert not said("live-1"), [r.getMessage() for r in caplog.records]
    dead = [r.getMessage() for r in caplog.records if "worker dead-1 stopped answering" in r.getMessage()]
    assert len(dead) == 1 and dead[0].startswith(
        "worker dead-1 stopped answering (its registry entry expired: dead, frozen or hung) announcing no held ad"), dead


def test_a_purged_registry_names_no_live_worker_dead(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture,
) -> None:
    """gone43: the registry bucket emptied with no reconnection (its stream purged): every entry vanished less
    than ``registry.ttl`` after its beat, so none expired, yet the reaper judged the live worker at once ("worker
    live-2 stopped answering (its registry entry expired …)"). Now it waits until the entry would have expired and
    the worker beats again meanwhile: never named. Without the rule (reaper.py passing no ``wall``): failed, named."""
    server = fresh_nats()
    settings = GameadSettings.model_validate({"registry": {"ttl": 6.0, "heartbeat_interval": 2.0}})

    async def main() -> None:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_topology(js, settings)
        registry, stop, started = Registry(nc, js, settings.registry), asyncio.Event(), utcnow()

        def snap() -> NodeInfo:
            return NodeInfo(id="live-2", role="worker", host="h", pid=4243, version="t", started_at=started,
                            heartbeat_at=utcnow(), holding=[], ack_wait=30)

        beat = asyncio.create_task(run_heartbeat(Registry(nc, js, settings.registry), snap, 2.0, stop))
        reaper = asyncio.create_task(run_reaper(nc, js, await AdStore.open(nc, js), registry, settings, "r", stop))
        ids: set[str] = set()
        next_beat: list[NodeInfo | None] = [None]

        async def look() -> None:
            ids.clear()
            ids.update(n.id for n in await registry.list())

        async def held() -> bool:  # the reaper leads: from its next round (every 1 s) it judges by its reads
            kv = await js.key_value(names.LEASES_BUCKET)
            return b'"holder":"r"' in (await kv.get(names.REAPER_LEASE)).value.replace(b" ", b"")

        led: list[bool] = []
        await until(_after(lambda: asyncio.gather(look(), _note(led, held)), lambda: led and "live-2" in ids),
                    timeout=20, what="the reaper leading, live-2 listed")
        first = await registry.lookup("live-2")
        await until(_after(lambda: _beat_after(registry, first[0], next_beat), lambda: next_beat[0] is not None),
                    timeout=10, what="a beat of live-2 after its first")
        await js.purge_stream(f"KV_{names.REGISTRY_BUCKET}")  # right after a beat: the next is 2 s away
        ids.clear()
        # the reaper's rounds meanwhile saw it absent
        await until(_after(look, lambda: "live-2" in ids), timeout=20, what="live-2 listed again")
        stop.set()
        await asyncio.gather(reaper, beat, return_exceptions=True)
        await nc.close()

    with caplog.at_level(logging.WARNING, logger="gamead_core.worker.reaper"):
        asyncio.run(main())
    assert not any("worker live-2" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


def _after(also: Callable[[], Awaitable[object]], want: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    """A probe for :func:`tests.waits.until`: ``also()`` awaited (a look that fills what ``want`` reads; one that
    fails, a key not written yet, is made again at the next poll), then ``want()``."""
    async def probe() -> object:
        with contextlib.suppress(Exception):
            await also()
        return want()

    return probe


async def _note(into: list[bool], probe: Callable[[], object]) -> None:
    if await probe():  # type: ignore[misc]
        into.append(True)


async def _note_renewal(js: JetStreamContext, into: list[float]) -> None:
    """Append the reaper lease's ``renewedAt`` (epoch s) to ``into`` while its holder is the reaper ``r``."""
    lease = Lease.from_json((await (await js.key_value(names.LEASES_BUCKET)).get(names.REAPER_LEASE)).value)
    if lease is not None and lease.holder == "r":
        into.append(lease.renewed_at)


async def _beat_after(registry: Registry, before: NodeInfo | None, into: list[NodeInfo | None]) -> None:
    """``into[0]``: ``live-2``'s entry once its heartbeat differs from ``before``'s (a new beat)."""
    now, _ = await registry.lookup("live-2")
    if now is not None and before is not None and now.heartbeat_at != before.heartbeat_at:
        into[0] = now
