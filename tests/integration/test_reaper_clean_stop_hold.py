"""A worker that stopped cleanly is told from a death while its delete mark lives, not after (review44 F1).

gone43 holds a node whose entry vanished less than ``registry.ttl`` after its heartbeat (lost with the bucket, not
expired: :func:`gamead_core.registry.gone.lost_early`) until its entry would have expired. The reaper's view
applied that hold to every absent node before the reaper asked the registry whether it had been deleted, so a
clean stop was asked about only at ``heartbeat + registry.ttl``: when its delete mark, written within a beat of that
heartbeat and removed by the same ``max_age``, expires. Told then by the clean-stop note alone; a note not written
(kv.py: "told by its registry entry's delete mark alone, for registry.ttl") and it was judged a death. Real
nats-server, registry.ttl 2 s, heartbeat 0.25 s; the worker beats through gamead's own heartbeat loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timezone

import nats
import pytest

from gamead_core import clock, names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdRecord, AdStatus, AdSubmission
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import HeldAd, NodeInfo, Registry, incarnation
from gamead_core.registry.beat import run_heartbeat
from gamead_core.registry.nodes import node_key
from gamead_core.store.ads import AdStore
from gamead_core.worker.reaper_loop import run_reaper
from tests.support import ad, reaper_rounds
from tests.waits import until

SETTINGS = GameadSettings.model_validate({"registry": {"ttl": 2.0, "heartbeat_interval": 0.25}})
DEADLINE = 30.0  #: seconds any one wait may take


def test_a_clean_stop_is_asked_about_when_first_absent_not_once_its_mark_expired(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture,
) -> None:
    """Worker ``clean-2`` beats holding one started ad and the reaper reads it; it stops cleanly without its
    clean-stop note (its beat ended, its entry deleted: the delete mark alone, as a stop whose note failed), the
    reaper reads it absent, then the mark is removed (purged from the registry stream: what ``max_age`` does
    ``registry.ttl`` after the delete). Past ``heartbeat + registry.ttl`` and two reaper rounds on, its ad's record is
    not re-put and no line says it stopped answering. Without asking first (reaper_view's hold before the
    registry's word, 41f8bf05): 'worker clean-2 stopped answering …' and the record re-put (1 of 1); with it 0."""
    server = fresh_nats()
    t0 = datetime.now(timezone.utc)

    def lines(node: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if node in r.getMessage()]

    async def main() -> tuple[int, int]:
        nc = await nats.connect(server.url)
        worker_nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, SETTINGS)
            registry, store = Registry(nc, js, SETTINGS.registry), await AdStore.open(nc, js)
            before = await store.create(AdRecord(
                id="ad-of-clean-2", status=AdStatus.QUEUED, priority=2, submitted_at=t0,
                ad=AdSubmission.model_validate(ad("Held by clean-2", 2))))
            ack = f"$JS.ACK.{names.work_stream(0)}.{names.level_consumer(2)}.1.1.1.1.0"  # nobody listens
            held = [HeldAd(ad_id="ad-of-clean-2", delivery="1.1", ack_subject=ack, started=True)]
            beats: list[datetime] = []

            def snap() -> NodeInfo:
                beats.append(datetime.fromtimestamp(clock.now(), timezone.utc))
                return NodeInfo(id="clean-2", role="worker", host="h", pid=4242, version="t", started_at=t0,
                                heartbeat_at=beats[-1], holding=held, ack_wait=30)

            beating = asyncio.create_task(run_heartbeat(
                Registry(worker_nc, worker_nc.jetstream(), SETTINGS.registry), snap, 0.25, asyncio.Event()))
            stop = asyncio.Event()
            reaper = asyncio.create_task(run_reaper(nc, js, store, registry, SETTINGS, "r", stop))

            async def listed() -> bool:
                return "clean-2" in {n.id for n in await registry.list()}

            await until(listed, timeout=DEADLINE, what="clean-2 listed")
            await asyncio.to_thread(reaper_rounds, server.url)  # the reaper has read it
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)
            last = beats[-1]
            await registry.delete("clean-2", incarnation("clean-2", 4242, t0))  # the mark; no note
            assert (await registry.lookup("clean-2"))[1], "no delete mark right after the clean stop"
            await asyncio.to_thread(reaper_rounds, server.url)  # the reaper has read it absent, the mark there
            await js.purge_stream(names.kv_stream(names.REGISTRY_BUCKET),
                                  subject=f"{names.kv_prefix(names.REGISTRY_BUCKET)}{node_key('clean-2')}")
            assert await registry.lookup("clean-2") == (None, False)
            await until(lambda: clock.now() > last.timestamp() + SETTINGS.registry.ttl, timeout=DEADLINE,
                        what="heartbeat + registry.ttl passed")
            await asyncio.to_thread(reaper_rounds, server.url)  # the hold is over: judged in these rounds if ever
            stop.set()
            await asyncio.wait_for(reaper, DEADLINE)
            return before, (await store.get("ad-of-clean-2")).revision  # type: ignore[union-attr]
        finally:
            await worker_nc.close()
            await nc.close()

    with caplog.at_level(logging.INFO, logger="gamead_core"):
        before, after = asyncio.run(main())
    assert lines("clean-2") == [], lines("clean-2")
    assert after == before, "the ad of the cleanly stopped worker was re-put"
