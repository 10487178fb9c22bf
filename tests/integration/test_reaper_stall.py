"""A nats-server stalled (SIGSTOP) during the reaper's rounds: no live node is taken for dead, and a node that died
meanwhile is still named and recovered (doctor36).

The reaper judges a death between two good reads of one registry. A round whose read fails (the server stopped:
the registry listing gets no answer within ``nats.request_timeout``) used to drop what the reaper had seen, so
the first good read after the stall only started a new view: a node whose entry expired during the stall (dead,
its ads held) was in neither, never named, its held ads left to JetStream's ``ack_wait`` and its records' budgets
unsettled (a dead API's records without a message: left queued for ever). Now the last good view is held over the
gap and a node of it still absent ``registry.ttl`` after the first good read is judged: every live node has beaten
again by then (its heartbeat interval is shorter), so a live one is never taken for dead.

Real nats-server, stopped and resumed by its recorded PID; nodes beat through gamead's own heartbeat loop. Figure
before the fix: ``dead-1`` never named in the 20 s after the resume, 3 runs of 3 (``live-1`` not named either);
``api-dead`` (an API) is judged the same way now.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable

import nats
import pytest

from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import NodeInfo, Registry
from gamead_core.registry.beat import run_heartbeat
from gamead_core.store.ads import AdStore
from gamead_core.worker.reaper_loop import run_reaper
from tests.support import all_threads_stopped
from tests.waits import until

SETTINGS = GameadSettings.model_validate({"registry": {"ttl": 2.0, "heartbeat_interval": 0.5},
                                          "nats": {"request_timeout": 1.0}})
NODES = ("live-1", "dead-1", "prior-1", "api-dead")  #: api-dead: an API node (no create fence: named, not settled)


def test_a_stall_takes_no_live_node_for_dead_and_a_death_during_it_is_still_named(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture,
) -> None:
    server = fresh_nats()
    assert server.proc is not None
    pid = server.proc.pid

    def said(node: str) -> bool:
        return any(f"worker {node} died" in r.getMessage() or f"worker {node} stopped answering" in r.getMessage()
                   for r in caplog.records)

    async def main() -> None:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_topology(js, SETTINGS)
        registry = Registry(nc, js, SETTINGS.registry, timeout=SETTINGS.nats.request_timeout)
        started, stop = utcnow(), asyncio.Event()
        beats: dict[str, tuple[nats.NATS, asyncio.Task[None], asyncio.Event]] = {}
        last_beat: dict[str, float] = {}
        for node in NODES:
            conn, halt = await nats.connect(server.url), asyncio.Event()

            def snap(node: str = node) -> NodeInfo:
                last_beat[node] = time.time()
                role = "api" if node.startswith("api") else "worker"
                return NodeInfo(id=node, role=role, host="h", pid=4242, version="t", started_at=started,
                                heartbeat_at=utcnow(), holding=[], ack_wait=30)

            beat = asyncio.create_task(run_heartbeat(Registry(conn, conn.jetstream(), SETTINGS.registry), snap, 0.5,
                                                     halt))
            beats[node] = (conn, beat, halt)
        reaper = asyncio.create_task(run_reaper(nc, js, await AdStore.open(nc, js), registry, SETTINGS, "r", stop))
        listed: set[str] = set()

        async def look() -> None:
            listed.update(n.id for n in await registry.list())

        while not set(NODES) <= listed:
            await look()
            await asyncio.sleep(0.1)
        beats["prior-1"][1].cancel()  # a death before the stall: named once the reaper reads (its view is built)
        await until(lambda: said("prior-1"), timeout=20, what="the reaper to name prior-1")
        try:
            os.kill(pid, signal.SIGSTOP)
            await until(lambda: all_threads_stopped(pid), timeout=10, what="nats-server to stop")
            beats["dead-1"][1].cancel()  # dies during the stall: its entry expires meanwhile
            beats["api-dead"][1].cancel()  # an API too: the records it left without a message are the reaper's
            # stopped until dead-1's entry is past registry.ttl, by a second: the reaper's reads and lease
            # renewals fail meanwhile, and at the resume every entry is due to expire (live-1's too)
            expiry = last_beat["dead-1"] + SETTINGS.registry.ttl + 1.0
            await until(lambda: time.time() > expiry, timeout=30, what="dead-1's entry to be past its ttl")
        finally:
            os.kill(pid, signal.SIGCONT)
        await until(lambda: said("dead-1"), timeout=20, what="the reaper to name dead-1 (before the fix: never)")
        await until(lambda: any("API api-dead (gamead t) died" in r.getMessage() for r in caplog.records),
                    timeout=20, what="the reaper to take api-dead for dead")
        stop.set()
        beats["live-1"][2].set()
        await asyncio.gather(reaper, beats["live-1"][1], return_exceptions=True)
        for conn, task, _ in beats.values():
            task.cancel()
            await conn.close()
        await nc.close()

    with caplog.at_level(logging.WARNING, logger="gamead_core.worker.reaper"), \
            caplog.at_level(logging.WARNING, logger="gamead_core.worker.orphans"):
        asyncio.run(main())
    assert not said("live-1"), [r.getMessage() for r in caplog.records]
    dead = [r.getMessage() for r in caplog.records if "worker dead-1 stopped answering" in r.getMessage()]
    assert len(dead) == 1, dead
