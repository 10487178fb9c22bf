"""An outcome write that landed though its answer was lost (NATS stalled past the write's timeout) is counted as
the worker's own: ``processed`` for a completion, ``failed`` for a retry. Before, the write's retry lost its
compare-and-set to that very write, read the record, found it final (or no longer the attempt's) and counted
nothing: ``gamead workers`` said 0 processed for an ad this worker completed. Dead-lettering likewise. Real nats-server, stopped by PID
(SIGSTOP) while the write is in flight; the worker's own Settler on a real delivery."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdError, AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import AdStore, Versioned
from gamead_core.worker.analyzer import analyze
from gamead_core.worker.budget import delivery_id
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.deadletter import dead_letter
from gamead_core.worker.hooks import Failure
from gamead_core.worker.settle import Settler
from gamead_core.worker.shield import Shield
from gamead_core.worker.storage_pause import StoragePause
from tests.support import ad, queue_ad, frozen

WRITE_TIMEOUT = 1.0  #: seconds a record write waits for its ack here


async def _settle_through_a_stall(server: EmbeddedNats, outcome: str) -> dict[str, Any]:
    """One ad queued and delivered; the server stopped; the outcome (``complete`` or a retryable ``fail``)
    written; the server resumed once the write has timed out, so the write lands and its answer is lost."""
    settings = GameadSettings()
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream(timeout=WRITE_TIMEOUT)
        await ensure_topology(js, settings)
        store = await AdStore.open(nc, js)
        record, revision = await queue_ad(store, js, "Landed")
        msg = (await (await js.pull_subscribe_bind(names.level_consumer(3), names.ADS_STREAM)).fetch(1, timeout=5))[0]
        stats = WorkerStats()
        settle = Settler(store, DeadLetters(js), settings.worker, worker_id="landed", stats=stats,
                         pause=StoragePause(stats), shielded=Shield(), ack_wait=30)
        delivery = delivery_id(msg.metadata.sequence.stream, 1)
        current = Versioned(settle.started(record, delivery), revision)
        with frozen(server.proc.pid):
            if outcome == "complete":
                task = asyncio.create_task(settle.complete(msg, current, analyze(record.ad), delivery))
            else:
                failure = Failure("FlakyDependency", "try again", retryable=True, delay=30.0)
                task = asyncio.create_task(settle.fail(msg, current, failure, delivery, marked=False))
            async with asyncio.timeout(30):
                while not stats.storage_failures:  # the write timed out: it waits in the stopped server
                    await asyncio.sleep(0.05)
        await asyncio.wait_for(task, 60)  # resumed: the write lands, its retry loses the compare-and-set to it
        return {"stats": stats, "final": (await store.get(record.id)).record}
    finally:
        await nc.close()


@pytest.mark.parametrize("outcome", ["complete", "fail"])
def test_a_write_that_landed_though_its_answer_was_lost_is_counted(fresh_nats: Any, outcome: str) -> None:
    out = asyncio.run(_settle_through_a_stall(fresh_nats(), outcome))
    stats: WorkerStats = out["stats"]
    final: AdRecord = out["final"]
    print(f"{outcome}: storage failures {stats.storage_failures}, processed {stats.processed}, "
          f"failed {stats.failed}, record {final.status.value} with {final.attempts} attempt(s)")
    assert stats.storage_failures >= 1  # the stall was seen: the write's answer never came in time
    if outcome == "complete":
        assert final.status == AdStatus.COMPLETED and final.attempts == 1
        assert (stats.processed, stats.failed) == (1, 0)  # before: (0, 0) for an ad this worker completed
    else:
        assert final.status == AdStatus.QUEUED and final.attempts == 1 and final.error is not None
        assert (stats.processed, stats.failed) == (0, 1)  # before: (0, 0)


async def _dead_letter_repeated(url: str) -> dict[str, Any]:
    """A crashed ad whose budget is spent (its error the reaper's ``WorkerLost``, the same for every caller):
    dead-lettered by one caller, then that caller's repeat (same ``dead_at``), another caller (its own
    ``dead_at``, the same error) and the doctor's way (no ``dead_at``)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_topology(js, GameadSettings())
        store = await AdStore.open(nc, js)
        lost = AdError(error_class="WorkerLost", message="its worker died", retryable=True, at=utcnow())
        record = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(), attempts=3,
                          error=lost, ad=AdSubmission.model_validate(ad("Dead twice")))
        await store.create(record)
        dlq = DeadLetters(js)
        ours, theirs = utcnow(), utcnow()

        async def dead(dead_at: Any) -> bool:
            return await dead_letter(store, dlq, record, lost, 3, source_seq=None, worker_id="landed",
                                     dead_at=dead_at)

        made = {"first": await dead(ours), "its repeat": await dead(ours), "another caller": await dead(theirs),
                "the doctor's way": await dead(None)}
        entries = (await js.stream_info(names.DLQ_STREAM)).state.messages
        return {"made": made, "final": (await store.get(record.id)).record, "entries": entries}
    finally:
        await nc.close()


def test_dead_lettering_repeated_after_its_write_landed_counts_as_made_and_only_by_its_caller(
        fresh_nats: Any) -> None:
    """The storage pause repeats a dead-lettering whose record write timed out; that write had landed. The repeat
    finds the record ``dead`` at its own ``dead_at`` with its error and says "made" (the worker counts it
    ``failed`` and acknowledges); one DLQ entry. Another caller with the same error (a crashed ad's is the
    reaper's: a review found every caller then counted it) and the doctor are told "not made"."""
    out = asyncio.run(_dead_letter_repeated(fresh_nats().url))
    print(f"made: {out['made']}; DLQ entries: {out['entries']}")
    assert out["made"] == {"first": True, "its repeat": True, "another caller": False, "the doctor's way": False}
    assert out["final"].status == AdStatus.DEAD and out["entries"] == 1  # before: the repeat said not made
