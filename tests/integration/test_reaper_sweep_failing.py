"""A sweep that keeps failing does not stop the reaper judging deaths (attack44b F4).

Each failed reaper round was a gap of its registry view (reaper_view: the view held over, absent nodes judged only
``registry.ttl`` after the gap ended). review44 F2 retries a sweep owed by a reconnection every ``min(5 s, every)``,
less than ``registry.ttl``: with the sweep failing each time (a work stream not answering while the registry did),
the grace restarted at every failure and a node that died meanwhile was never judged (2 of 4 killed workers unjudged
73 s in the drill). Now only a failure before the listing arrived is a gap (:mod:`gamead_core.worker.reaper_loop`).
Real nats-server, registry.ttl 2 s, heartbeat 0.25 s; the sweep fails for real: the reaper's connection goes through a
proxy (tests.nats_filter) that loses its requests for a work-stream consumer's info (the sweep's first read; the
registry answers), and with ``every`` 1 s it fails every second, as the owed one does every 5 s against a 10 s ttl."""

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
from gamead_core.registry import HeldAd, NodeInfo, Registry
from gamead_core.registry.beat import run_heartbeat
from gamead_core.store.ads import AdStore
from gamead_core.worker.mover import Sweeper
from gamead_core.worker.reaper_loop import run_reaper
from tests.nats_filter import PublishFilter
from tests.support import ad, reaper_rounds
from tests.waits import until

SETTINGS = GameadSettings.model_validate({"registry": {"ttl": 2.0, "heartbeat_interval": 0.25},
                                          "nats": {"request_timeout": 0.5}})
DEADLINE = 30.0  #: seconds any one wait may take
JUDGED_WITHIN = 12.0  #: seconds after the kill the death must be judged by (entry expiry 2 s + grace 2 s, and slack)


@pytest.mark.timeout(300)  # four waits of up to DEADLINE each: past the default 120 s at load 30
def test_a_death_is_judged_while_every_sweep_fails(
    fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter], caplog: pytest.LogCaptureFixture,
) -> None:
    """Worker ``dead-4`` beats holding one started ad and the reaper reads it; the work stream does not answer it, so
    the reaper's sweep (``every`` 1 s) fails every second ("reaper: …" logged); dead-4 is killed (its beat cancelled: no
    delete, no note). Its ad is recovered ("worker dead-4 stopped answering" said, the record re-put) within 12 s of
    the kill. Without the fix (every failed round a gap: reaper.py before this change) it is never judged while the
    sweeps fail: 0 of 1 within 12 s; with it 1 of 1 (about 2.5 s: expiry, then the next round)."""
    server = fresh_nats()
    links.append(proxy := PublishFilter(("127.0.0.1", server.port)).start())
    t0 = datetime.now(timezone.utc)

    async def main() -> bool:
        nc = await nats.connect(proxy.url)
        worker_nc = await nats.connect(server.url)
        try:
            await ensure_topology(worker_nc.jetstream(), SETTINGS)
            js = nc.jetstream(timeout=SETTINGS.nats.request_timeout)
            registry, store = Registry(nc, js, SETTINGS.registry), await AdStore.open(nc, js)
            before = await store.create(AdRecord(
                id="ad-of-dead-4", status=AdStatus.QUEUED, priority=2, submitted_at=t0,
                ad=AdSubmission.model_validate(ad("Held by dead-4", 2))))
            proxy.drop(f"$JS.API.CONSUMER.INFO.{names.work_stream(0)}.{names.level_consumer(1, 0)}")  # never answered
            ack = f"$JS.ACK.{names.work_stream(0)}.{names.level_consumer(2)}.1.1.1.1.0"  # nobody listens
            held = [HeldAd(ad_id="ad-of-dead-4", delivery="1.1", ack_subject=ack, started=True)]

            def snap() -> NodeInfo:
                return NodeInfo(id="dead-4", role="worker", host="h", pid=4343, version="t", started_at=t0,
                                heartbeat_at=datetime.fromtimestamp(clock.now(), timezone.utc), holding=held,
                                ack_wait=30)

            beating = asyncio.create_task(run_heartbeat(
                Registry(worker_nc, worker_nc.jetstream(), SETTINGS.registry), snap, 0.25, asyncio.Event()))
            stop = asyncio.Event()
            reaper = asyncio.create_task(run_reaper(nc, js, store, registry, SETTINGS, "r", stop,
                                                    sweeper=Sweeper(every=1.0)))

            async def listed() -> bool:
                return "dead-4" in {n.id for n in await registry.list()}

            await until(listed, timeout=DEADLINE, what="dead-4 listed")
            await asyncio.wait_for(asyncio.to_thread(reaper_rounds, server.url), 2 * DEADLINE)  # the reaper read it
            await until(lambda: any(r.getMessage().startswith("reaper: ") for r in caplog.records),
                        timeout=DEADLINE, what="a failed sweep")
            beating.cancel()  # kill -9: no delete, no note; its entry expires registry.ttl after its last beat
            await asyncio.wait_for(asyncio.gather(beating, return_exceptions=True), DEADLINE)

            async def recovered() -> bool:
                return (await store.get("ad-of-dead-4")).revision != before  # type: ignore[union-attr]

            try:
                await until(recovered, timeout=JUDGED_WITHIN, what="dead-4's ad recovered")
                judged = True
            except AssertionError:
                judged = False
            stop.set()
            await asyncio.wait_for(reaper, DEADLINE)
            return judged
        finally:
            await worker_nc.close()
            await nc.close()

    with caplog.at_level(logging.INFO, logger="gamead_core"):
        judged = asyncio.run(main())
    failures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reaper: ")]
    assert failures, "the sweep never failed"
    assert judged, f"dead-4 never judged while the sweep failed ({len(failures)} failures)"
    assert any(r.getMessage().startswith("worker dead-4 stopped answering") for r in caplog.records)
