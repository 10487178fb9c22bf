"""No write of a node's registry entry goes out after its clean stop's delete mark (reg54). Beats are sequential and
a compare-and-set, so a beat cannot follow the mark; an announcement (a plain publish: a worker's held ads, its
quiet signal answered, :meth:`Registry.put_nowait`) could: sent after the mark, it put the entry back, and
``gamead workers``, doctor, top and the autoscaler counted the stopped node alive until ``registry.ttl``. Real
nats-server; the registry's read of its key is the only thing wrapped, to order the stop inside an announcement."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import nats
import pytest

from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.registry.kv import Registry
from gamead_core.registry.wire import NodeInfo
from tests.integration.test_node_views import worker_entry

SETTINGS = GameadSettings(registry={"ttl": 30.0, "heartbeat_interval": 0.5}).registry  # far past the test


@pytest.fixture
def nats_url(tmp_path: Any) -> Iterator[str]:
    server = EmbeddedNats(tmp_path / "nats").start()
    try:
        yield server.url
    finally:
        server.stop()


async def _listed_after(registry: Registry, nc: nats.NATS, node_id: str) -> tuple[bool, bool]:
    """(``node_id`` listed, its key's last write a delete mark) once every publish sent so far was applied."""
    await nc.flush()
    _, deleted = await registry.lookup(node_id)
    return node_id in [n.id for n in await registry.list()], deleted


def test_announcements_and_beats_sent_after_a_clean_stop_do_not_bring_the_entry_back(nats_url: str) -> None:
    """Before: the announcement after the stop was written (its last look at the key was fresh), the entry listed
    again with no delete mark: (listed, deleted) = (True, False)."""
    async def scenario() -> tuple[bool, bool]:
        nc = await nats.connect(nats_url)
        try:
            registry, me = Registry(nc, nc.jetstream(), SETTINGS), worker_entry("stopping-1")
            await registry.put(me)
            await registry.stop(me)
            await registry.put_nowait(me)  # e.g. a quiet signal answered while the worker stops
            await registry.put_raw_nowait(me.id, me.model_dump_json().encode())  # its held ads announced
            await registry.put(me)  # a beat
            return await _listed_after(registry, nc, me.id)
        finally:
            await nc.close()

    assert asyncio.run(scenario()) == (False, True)


def test_an_announcement_reading_its_key_while_the_stop_runs_is_not_sent_after_the_mark(nats_url: str) -> None:
    """The announcement's look at its key (stale: it reads first) is answered, and the whole clean stop runs before it
    goes on. Before: it was published after the mark: (listed, deleted) = (True, False)."""
    async def scenario() -> tuple[bool, bool]:
        nc = await nats.connect(nats_url)
        try:
            registry, me = Registry(nc, nc.jetstream(), SETTINGS), worker_entry("stopping-2")
            await registry.put(me)
            read, stopped = registry.revision, asyncio.Event()

            async def stop_during_the_read(node_id: str, earlier: bool = False) -> tuple[int, NodeInfo | None]:
                got = await read(node_id, earlier)
                if not stopped.is_set():  # the announcement's read: the stop (whose own reads pass) runs now
                    stopped.set()
                    await registry.stop(me)
                return got

            registry.revision = stop_during_the_read  # type: ignore[method-assign]
            registry.owner.fresh_for = 0.0  # its last look at the key is stale: the announcement reads it first
            await registry.put_nowait(me)
            assert stopped.is_set(), "the announcement did not read its key"
            return await _listed_after(registry, nc, me.id)
        finally:
            await nc.close()

    assert asyncio.run(scenario()) == (False, True)


def test_another_process_of_the_id_writes_after_an_earlier_ones_clean_stop(nats_url: str) -> None:
    """The refusal is the stopped process's alone: a later process of the id (a restart under its name, here on the
    same connection) beats and is listed."""
    async def scenario() -> tuple[bool, bool]:
        nc = await nats.connect(nats_url)
        try:
            registry, old = Registry(nc, nc.jetstream(), SETTINGS), worker_entry("restarted-1", started=1000.0)
            await registry.put(old)
            await registry.stop(old)
            await registry.put(worker_entry("restarted-1", started=2000.0))
            return await _listed_after(registry, nc, old.id)
        finally:
            await nc.close()

    assert asyncio.run(scenario()) == (True, False)
