"""A worker started with a shorter ``queue.ack_wait`` than the fleet's level consumers (its start keeps their
longer live one: gamead_core.queue.limit_rule) paces, judges and announces by that live value, one source
(fix32lim): its in-progress acks, its settler's judgement of when a delivery nobody renews comes back, and its
heartbeat's ``ackWait``. Before, only the renewals followed a lowered live value; the settler and the heartbeat
kept the worker's own. Real nats-server, a real worker process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import nats

from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import Registry
from gamead_core.store.ads import AdStore
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.keepalive import AckWaitKeepAlive
from gamead_core.worker.settle import Settler
from gamead_core.worker.shield import Shield
from gamead_core.worker.storage_pause import StoragePause
from tests.support import Proc, ad, start_worker, wait_for

FLEET, OWN = 9.0, 2.0  #: seconds: the level consumers' ack_wait, the newcomer's own


def _fleet(url: str) -> None:
    async def main() -> None:
        nc = await nats.connect(url)
        try:
            await ensure_topology(nc.jetstream(), GameadSettings(queue={"ack_wait": FLEET}))
        finally:
            await nc.close()

    asyncio.run(main())


def _announced(url: str, worker_id: str) -> float | None:
    """The ``ack_wait`` the worker's registry entry announces (None: no entry yet)."""

    async def main() -> float | None:
        nc = await nats.connect(url)
        try:
            nodes = await Registry(nc, nc.jetstream(), GameadSettings().registry).list()
            return next((n.ack_wait for n in nodes if n.id == worker_id), None)
        finally:
            await nc.close()

    return asyncio.run(main())


def test_a_worker_with_a_shorter_ack_wait_announces_and_paces_by_the_fleets(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """Before: the newcomer's heartbeat said ackWait 2 (the reaper then took its renewals for every 0.67 s and its
    ads for back after 2 s) while the consumers held 9. Now it announces 9 and says it renews every 3 s."""
    server = fresh_nats()
    _fleet(server.url)
    newcomer = start_worker(server.url, tmp_path, worker_id="newcomer", ready=True, GAMEAD_QUEUE__ACK_WAIT=str(OWN),
                            GAMEAD_REGISTRY__HEARTBEAT_INTERVAL="0.5", GAMEAD_REGISTRY__TTL="3")
    procs.append(newcomer)
    wait_for(lambda: _announced(server.url, "newcomer") is not None, what="the newcomer's heartbeat")
    assert _announced(server.url, "newcomer") == FLEET
    assert "the level consumers' live ack_wait is 9 s, above this worker's queue.ack_wait 2 s: in-progress acks " \
           "every 3 s" in newcomer.output()


def test_the_settler_judges_an_unrenewed_delivery_by_the_consumers_live_ack_wait(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """An ad `processing` for task_timeout + 5 s is still in its worker's hands while the consumers' ack_wait is 9 s
    (JetStream has not redelivered it). The newcomer's settler, composed as the worker does (its keep-alive seeded
    by the start's topology report), says so; before, it judged by its own 2 s: due for redelivery 3 s ago."""
    server = fresh_nats()
    _fleet(server.url)
    settings = GameadSettings(queue={"ack_wait": OWN}, worker={"task_timeout": 10})

    async def main() -> tuple[float | None, float]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            keepalive = AckWaitKeepAlive(settings.queue.ack_wait)
            keepalive.seed((await ensure_topology(js, settings)).live_values("ack_wait"))
            store = await AdStore.open(nc, js)
            stats = WorkerStats()
            settle = Settler(store, DeadLetters(js), settings.worker, worker_id="newcomer", stats=stats,
                             pause=StoragePause(stats), shielded=Shield(), ack_wait=lambda: keepalive.ack_wait)
            started = utcnow() - timedelta(seconds=settings.worker.task_timeout + 5)
            record = AdRecord(id="01held", status=AdStatus.PROCESSING, priority=3, submitted_at=started,
                              started_at=started, ad=AdSubmission.model_validate(ad("Held elsewhere")))
            await store.create(record)
            return await settle.waiting_since("01held", 1, time.time()), keepalive.period
        finally:
            await nc.close()

    due, period = asyncio.run(main())
    assert due is None  # still held: not counted as waiting for a redelivery
    assert period == FLEET / 3
