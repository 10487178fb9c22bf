"""regress36 F4: a redelivery whose ``processing`` claim timed out in a NATS stall, and was handed back "uncharged",
had that claim land once the server resumed: the next delivery found the record ``processing`` under the handed-back
delivery, called it a lost attempt ("never ended … the attempt stays charged"), ran the ad alone and completed it
with ``attempts`` 2 for one analysis. Now the hand-back first writes the refunding hand-back record over the claim
(or over the revision the claim was made on, so a claim still on its way cannot land), retried until our storage
answers, then puts the delivery back. Real nats-server, stopped by PID (SIGSTOP) right before the claim is sent;
the worker's own :class:`~gamead_core.worker.handle.AdHandler` on real deliveries."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

import nats
import pytest

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdRecord, AdStatus
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import AdStore
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.handle import AdHandler
from gamead_core.worker.held import HeldAds
from gamead_core.worker.hooks import Hooks
from gamead_core.worker.settle import Settler
from gamead_core.worker.shield import Shield
from gamead_core.worker.solo import SoloGate
from gamead_core.worker.storage_pause import StoragePause
from tests.support import queue_ad, all_threads_stopped, wait_for

WRITE_TIMEOUT = 1.0  #: seconds a record write waits for its answer here


async def _claim_through_a_stall(server: EmbeddedNats) -> dict[str, Any]:
    """One ad queued; its first delivery handed back at once (a prefetch buffer's hand-back); its second delivery
    handled with the server stopped right before the claim (``processing``, one attempt) is sent, resumed once the
    handler saw the claim time out; then every later delivery handled until the ad is final."""
    settings = GameadSettings()
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream(timeout=WRITE_TIMEOUT)
        await ensure_topology(js, settings)
        store = await AdStore.open(nc, js)
        record, _ = await queue_ad(store, js, "Stalled claim")
        sub = await js.pull_subscribe_bind(names.level_consumer(3), names.ADS_STREAM)
        await (await sub.fetch(1, timeout=5))[0].nak()  # handed back unstarted: the next delivery is a redelivery
        stats, shield, held = WorkerStats(), Shield(), HeldAds()
        pause = StoragePause(stats)
        settle = Settler(store, DeadLetters(js), settings.worker, worker_id="wS", stats=stats, pause=pause,
                         shielded=shield, ack_wait=30)
        stopped = False

        async def stop_nats() -> None:  # the handler's announcement, right before the slow path's claim
            nonlocal stopped
            if not stopped:
                stopped = True
                os.kill(server.proc.pid, signal.SIGSTOP)
                await asyncio.to_thread(wait_for, lambda: all_threads_stopped(server.proc.pid), timeout=10,
                                        interval=0.005, what="nats-server to stop")

        handler = AdHandler(settings, "wS", stats=stats, settle=settle, gate=SoloGate(), pause=pause,
                            hooks=Hooks([]), shielded=shield, held=held, announce=stop_nats)
        deliveries = []
        try:
            async with asyncio.timeout(60):
                while True:
                    msg = (await sub.fetch(1, timeout=10))[0]
                    meta = msg.metadata
                    deliveries.append(meta.num_delivered)
                    held.hold_delivery(msg)
                    held.mark_started((meta.stream, meta.sequence.stream))  # so the slow path announces its unmark
                    task = asyncio.create_task(handler(msg))
                    while not stats.storage_failures and not task.done():  # until the claim timed out, if stopped
                        await asyncio.sleep(0.05)
                    os.kill(server.proc.pid, signal.SIGCONT)  # the claim lands now, its answer long lost
                    await task
                    held.pop((meta.stream, meta.sequence.stream))
                    if (await store.get(record.id, consistent=True)).record.status.terminal:
                        break
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        return {"final": (await store.get(record.id, consistent=True)).record, "deliveries": deliveries,
                "stats": stats}
    finally:
        await nc.close()


def test_a_claim_that_landed_after_its_delivery_was_handed_back_uncharged_charges_nothing(
        fresh_nats: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    out = asyncio.run(_claim_through_a_stall(fresh_nats()))
    final: AdRecord = out["final"]
    stats: WorkerStats = out["stats"]
    lost = [r.getMessage() for r in caplog.records if "never ended" in r.getMessage()]
    refunded = [r.getMessage() for r in caplog.records if "landed though its answer was lost" in r.getMessage()]
    print(f"deliveries {out['deliveries']}, storage failures {stats.storage_failures}, record {final.status.value} "
          f"with {final.attempts} attempt(s), suspect {final.suspect}; lost-attempt lines: {lost}")
    assert stats.storage_failures >= 1  # the stall was met: the claim's answer never came in time
    assert len(out["deliveries"]) >= 2  # delivery 2 was handed back after the stall; a later one ran the ad
    assert final.status == AdStatus.COMPLETED
    assert final.attempts == 1  # before: 2 (the landed claim of delivery 2 kept as a lost attempt)
    assert not final.suspect and not lost  # before: "its attempt under delivery N.2 … never ended", run alone
    assert len(refunded) == 1  # the operator is told why the delivery was slow to come back
