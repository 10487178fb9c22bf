"""A clean stop while NATS is away writes its delete mark and note once NATS is back within the stop (attack44b F2).

The last write of a stopping node's heartbeat loop (:meth:`Registry.stop`: the clean-stop note and the delete mark)
was tried once, for 2 s, and not at all while NATS was away: a worker SIGTERMed during a NATS outage that came back
3 s before the process exited wrote neither, was judged a death ("stopped answering") and, running one ad, had it
charged an attempt. Now it is tried again until it lands or the stop's time for it ends
(:func:`gamead_core.shutdown.last_writes`; the worker's is :class:`gamead_core.worker.drain.LastWrites`). Real
nats-server, killed (kill -9: the registry, a memory store, goes with it) and started again on its port.

Each test closes its connection as a process does (:func:`gamead_core.shutdown.close_connection`): with a bare
``nc.close()``, nats-py's reconnection loop could take the close's cancel and go on trying the killed server for
ever, and ``asyncio.run``'s exit waited on it (flakes51B: the cut stop's test hung 120 s in a fresh clone's suite;
tests/integration/test_close_for_good.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import nats
import pytest

from gamead_core import clock
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import NodeInfo, Registry, run_heartbeat
from gamead_core.shutdown import close_connection
from gamead_core.stop_bound import ended
from tests.waits import until

SETTINGS = GameadSettings.model_validate({"registry": {"ttl": 2.0, "heartbeat_interval": 0.25}})
DEADLINE = 30.0  #: seconds any one wait may take
LAST_FOR = 20.0  #: seconds the stop gives its mark and note (a worker's: worker.drain_timeout + 3 s)


async def beating(nc: Any, me: Callable[[], NodeInfo], last_for: float = LAST_FOR,
                  ) -> tuple[Registry, asyncio.Event, asyncio.Task[None]]:
    """A registry on ``nc`` (topology made) beating ``me()`` every 0.25 s, once its entry is listed: the registry,
    the event that stops the beat (its clean stop then gets ``last_for`` s) and the beat's task."""
    js = nc.jetstream(timeout=1.0)
    await ensure_topology(js, SETTINGS)
    registry, stop = Registry(nc, js, SETTINGS.registry, timeout=1.0), asyncio.Event()
    task = asyncio.create_task(run_heartbeat(registry, me, 0.25, stop, last_for=lambda: last_for))
    node_id = me().id

    async def listed() -> bool:
        return node_id in {n.id for n in await registry.list()}

    await until(listed, timeout=DEADLINE, what=f"{node_id} listed")
    return registry, stop, task


def _node(node_id: str, role: str, pid: int) -> Callable[[], NodeInfo]:
    """A node's heartbeat snapshot, stamped on nats-server's clock at each beat."""
    started = datetime.now(timezone.utc)

    def me() -> NodeInfo:
        return NodeInfo(id=node_id, role=role, host="h", pid=pid, version="t", started_at=started,
                        heartbeat_at=datetime.fromtimestamp(clock.now(), timezone.utc))

    return me


async def _stop_while_away(server: EmbeddedNats, nc: Any, me: Callable[[], NodeInfo]) -> tuple[Registry, Any]:
    """``me`` beating (:func:`beating`), then nats-server killed and the node's stop begun while its connection is
    down: its registry and heartbeat task."""
    registry, stop, beat = await beating(nc, me)
    server.kill()
    await until(lambda: not nc.is_connected, timeout=DEADLINE, what="the connection down")
    stop.set()
    return registry, beat


def test_a_clean_stop_during_a_nats_outage_is_noted_once_nats_is_back(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """Node ``stop-1`` beats; nats-server is killed, the node's stop begins while its connection is down, then the
    server is started again. The heartbeat loop ends having written the note and the mark: the registry says the
    process stopped cleanly (:meth:`Registry.stopped`, what the reaper asks). Without the retry (beat.py's one
    ``last_write`` before this change): not tried at all (NATS away), ``stopped`` False (0 of 1); with it True."""
    server = fresh_nats()
    me = _node("stop-1", "worker", 4545)

    async def main() -> bool:
        nc = await nats.connect(server.url, reconnect_time_wait=0.1, max_reconnect_attempts=-1)
        try:
            registry, beat = await _stop_while_away(server, nc, me)
            await asyncio.to_thread(server.start)
            await asyncio.wait_for(beat, DEADLINE)
            await until(lambda: nc.is_connected, timeout=DEADLINE, what="the connection back")
            return await registry.stopped(me())
        finally:
            await close_connection(nc, drain_timeout=0)  # as a process does: its reconnect loop ended too

    assert asyncio.run(main()), "the clean stop wrote neither its note nor its mark once NATS was back"


def test_a_clean_stop_cut_while_nats_is_gone_says_it_leaves_the_entry_to_the_ttl(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture
) -> None:
    """flakes50B: the API gives its heartbeat's stop 3 s, then cancels it (``stop_observers``). With NATS killed, a
    beat's clock sample waited its request timeout on the dropped connection, then the removal was tried while NATS
    was away: past the 3 s, cancelled, the heartbeat said nothing, and the API's log of that stop never told why its
    entry stayed (test_shutdown's NATS-gone case, 1 of 4,581 tests in a fresh clone's suite at load 4-15). Here the
    stop is cut while NATS is away: one INFO line names the node, that the TTL removes its entry, and why (before
    the fix: no line, 0 of 1)."""
    server = fresh_nats()
    me = _node("cut-1", "api", 4546)

    async def main() -> None:
        nc = await nats.connect(server.url, reconnect_time_wait=0.1, max_reconnect_attempts=-1)
        try:
            _, beat = await _stop_while_away(server, nc, me)  # its removal tried while NATS is away (up to 5 s)
            # the stop's bound cuts it, as the API's stop_observers does (cancelled again every 0.1 s: hang50)
            assert await ended([beat], DEADLINE, "the heartbeat")
        finally:
            await close_connection(nc, drain_timeout=0)  # as a process does: its reconnect loop ended too

    with caplog.at_level(logging.INFO, logger="gamead_core.registry.beat"):
        asyncio.run(main())
    said = [r.getMessage() for r in caplog.records if r.name == "gamead_core.registry.beat"]
    assert any("could not remove heartbeat of cut-1 on shutdown (the ttl will)" in m and "NATS is away" in m
               for m in said), said
