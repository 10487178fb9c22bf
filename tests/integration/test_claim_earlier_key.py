"""review46 F1: a start's id claim reads the key an older gamead beats the id under, on a real nats-server.

review41 F9 moved the registry key of every id with a character outside ``[-.a-zA-Z0-9]`` (``worker_1`` was key
``worker_1``, now ``worker=5f1``). A rolling upgrade of a fixed ``--id worker_1`` pod (the new pod started while the
older one still runs, as a Deployment's surge does) claimed ``worker=5f1``, found it free and started at once beside
the live older process, then adopted that live process's entry (read under the earlier key) as a dead predecessor's:
its running ads handed back while it still analysed them, and every reaper read the two processes' beats as deaths.

Figures: an older process beating ``worker_1`` under ``worker_1`` every 0.3 s, a new start claiming it: before, the
claim returned (refused False) at once; now it is refused, exit 5's ``the id worker_1 is held by a live process``.
An older process's entry not renewed (it died): the id is taken over after the watch, as under the id's own key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import nats
from nats.js.kv import KeyValue

from gamead_core import names
from gamead_core.config import RegistrySettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import ConfigError
from gamead_core.registry import Registry
from gamead_core.registry.claim import claim
from tests.integration.test_node_views import worker_entry

SETTINGS = RegistrySettings(ttl=10.0, heartbeat_interval=0.5)


async def _opened(nc: nats.NATS) -> tuple[Registry, KeyValue]:
    """The registry (opened) and its bucket as an older gamead writes it, on ``nc``."""
    registry = Registry(nc, nc.jetstream(), SETTINGS)
    await registry.open()
    return registry, await nc.jetstream().key_value(names.REGISTRY_BUCKET)


def _claim_beside_older(url: str, older_beats: bool) -> tuple[bool, str]:
    """Claim ``worker_1`` while an older gamead's process of it beats (``older_beats``) under key ``worker_1`` or
    left its entry there once (dead). Returns (refused, the claim's refusal or the new key's holder's start)."""

    async def scenario() -> tuple[bool, str]:
        nc = await nats.connect(url)
        try:
            registry, kv = await _opened(nc)
            t0 = time.time()
            older = worker_entry("worker_1", started=t0 - 100)
            await kv.put("worker_1", older.model_dump_json().encode())  # what an older gamead writes

            async def beats() -> None:
                while older_beats:
                    await asyncio.sleep(0.3)
                    await kv.put("worker_1", worker_entry("worker_1", started=t0 - 100).model_dump_json().encode())

            beating = asyncio.ensure_future(beats())
            try:
                claimed = await asyncio.wait_for(
                    claim(registry, worker_entry("worker_1", started=t0 - 1), interval=0.5, ttl=10.0), timeout=30.0)
            except ConfigError as exc:
                return True, str(exc)
            finally:
                beating.cancel()
            _, holder = await registry.revision("worker_1")
            assert claimed is not None and holder is not None
            return False, f"{holder.started_at.timestamp() - t0:.0f}"
        finally:
            await nc.close()

    return asyncio.run(scenario())


def test_a_start_beside_a_live_older_process_of_its_id_is_refused(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    refused, said = _claim_beside_older(fresh_nats().url, older_beats=True)
    assert refused, f"claimed beside a live older process: holder started {said}"
    assert "the id worker_1 is held by a live process" in said


def test_a_dead_older_process_s_id_is_taken_over(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    assert _claim_beside_older(fresh_nats().url, older_beats=False) == (False, "-1")


def test_a_clean_stop_leaves_a_live_older_process_s_entry_under_the_earlier_key(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """review46 F4: a newer process's clean stop marks the earlier key too (for an older reaper: review42 F1), over
    whatever entry of its id was there. An older process of the id (its rollback started beside the newer one: an
    older gamead has no claim) had its live entry deleted: every newer reaper then read it as a death (the mark names
    the newer process) and charged its running ads. Figure (the earlier key's last write after the stop): before
    ``DEL``; now the older process's entry, ``PUT``."""

    async def scenario() -> str | None:
        nc = await nats.connect(fresh_nats().url)
        try:
            registry, kv = await _opened(nc)
            t0 = time.time()
            newer = worker_entry("worker_1", started=t0 - 100)
            await registry.put_over(newer, 0)
            await kv.put("worker_1", worker_entry("worker_1", started=t0 - 1).model_dump_json().encode())
            await registry.stop(newer)
            raw = await nc.jetstream().get_last_msg(registry.stream, f"{registry.prefix}worker_1")
            return (raw.headers or {}).get(names.HDR_KV_OPERATION, "PUT")
        finally:
            await nc.close()

    assert asyncio.run(scenario()) == "PUT"
