"""A suspect ad running alone is the only analysis its worker's registry entry counts as running (poison55).

Drill poison55 (``gamead up --workers 3``, 14 poison ads among 6,000 at 300 ads/s, load 25-46): one of 64 crashes
of a poison ad running alone was not charged. Its worker's recovery read ``5 announced ad(s), 3 of them running:
none charged``: two fresh ads had taken slots in a start step whose pull was sent before the suspect ad went alone
(its free slots counted then) and answered after the ad cleared the others' ``started`` flags; the step flagged them
``started`` (:func:`gamead_core.worker.budget.held_state`) and announced them, so the poison's crash was split three
ways (uncharged, a free crash) and the innocent two became suspect, each to run alone again.

Here that start step is the worker's own (``Worker._start`` with the free slots its pull counted before the gate
closed), on a real nats-server, while the suspect ad hangs alone in its attempt. The worker's registry entry is then
read as a recovery reads it (another connection) and judged by the recovery's rules. Before: 3 running, none charged.
Now: the step starts the ads without the flag (they wait at the gate, then take the slow path): 1 running, charged.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg

from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.models import AdRecord, AdStatus, AdSubmission, Analysis, utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import Registry
from gamead_core.store.ads import AdStore
from gamead_core.worker.budget import death_verdict, held_state
from gamead_core.worker.hooks import Analyse, Hook
from gamead_core.worker.pull_step import pull_step
from gamead_core.worker.runtime import Worker
from tests.support import ad, queue_record
from tests.waits import until

LEVEL = 3
ENV = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5", "GAMEAD_REGISTRY__TTL": "6", "GAMEAD_QUEUE__IDLE_WAIT": "1",
       "GAMEAD_QUEUE__IDLE_POLL": "1", "GAMEAD_WORKER__CONCURRENCY": "4",
       "GAMEAD_WORKER__PREFETCH": "4", "GAMEAD_WORKER__PREFETCH_WAIT": "0"}  # what a long poll brings is kept


class HangOne(Hook):
    """The attempt of ad ``ad_id`` waits for :attr:`go` (it "runs alone" meanwhile); :attr:`alone` says it began."""

    def __init__(self, ad_id: str) -> None:
        self.ad_id, self.alone, self.go = ad_id, asyncio.Event(), asyncio.Event()

    async def around_attempt(self, record: AdRecord, call: Analyse) -> Analysis:
        if record.id == self.ad_id:
            self.alone.set()
            await self.go.wait()
        return await call()


def _record(title: str, **extra: Any) -> AdRecord:
    return AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=LEVEL, submitted_at=utcnow(),
                    ad=AdSubmission.model_validate(ad(title, priority=LEVEL)), **extra)


async def _running_at_death(url: str, settings: GameadSettings, worker_id: str, since: datetime) -> list[str] | None:
    """The ads a recovery of ``worker_id`` would count as running, were it to die now: its entry at the server, once
    a heartbeat written after ``since`` (the whole ledger) is there; None before."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        registry = Registry(nc, js, settings.registry, replicas=1, timeout=settings.nats.request_timeout)
        store = await AdStore.open(nc, js)
        entry, _ = await registry.lookup(worker_id)
        if entry is None or entry.heartbeat_at <= since:
            return None
        running = []
        for held in entry.holding:
            record = (await store.get(held.ad_id)).record
            if held_state(record, held.delivery, held.started) in ("running", "started"):
                running.append(held.ad_id)
        return running
    finally:
        await nc.close()


async def _scenario(url: str) -> tuple[list[str], str, dict[str, AdStatus]]:
    settings = GameadSettings()
    nc = await nats.connect(url)
    stop = asyncio.Event()
    try:
        js = nc.jetstream()
        await ensure_topology(js, settings)
        store = await AdStore.open(nc, js)
        # as a recovery leaves an ad that was in flight beside others on a worker that died: suspect, uncharged
        suspect = _record("Suspect", suspect=True, retry_at=utcnow())
        hang = HangOne(suspect.id)
        worker = Worker(settings, url, worker_id="stale-start", hooks=[hang])
        running = asyncio.create_task(worker.run(stop))
        await queue_record(store, js, suspect)
        await until(hang.alone.is_set, timeout=60, what="the suspect ad to run alone")
        innocents = [_record(f"Innocent {i}") for i in range(2)]
        for record in innocents:
            await queue_record(store, js, record)
        # the pull loop's step (pull, then start what it brought) with the free slots it counted before the gate
        # closed (3 of 4): what a pull sent then and answered after the suspect ad went alone does
        brought: list[Msg] = []

        async def pulled() -> bool:
            brought.extend(await pull_step(worker._puller, worker._buffer, 3, settings.worker, 4, None))  # noqa: SLF001
            return len(brought) + len(worker._buffer) >= 2  # noqa: SLF001 (a long poll's are held: buffered)

        await until(pulled, timeout=30, what="both innocent ads pulled")
        await worker._start(brought, 3)  # noqa: SLF001
        since = utcnow()
        counted = await until(lambda: _running_at_death(url, settings, worker.id, since), timeout=30,
                              what="a heartbeat of the worker written after the step")
        hang.go.set()
        ids = [suspect.id] + [r.id for r in innocents]

        async def settled() -> dict[str, AdStatus] | None:
            got = {i: (await store.get(i)).record.status for i in ids}
            return got if all(s.terminal for s in got.values()) else None

        final = await until(settled, timeout=60, what="all three ads settled")
        return counted, suspect.id, final
    finally:
        stop.set()
        await asyncio.wait_for(running, 60)
        await nc.close()


@pytest.mark.timeout(180)
def test_a_start_step_counted_before_a_suspect_ad_went_alone_leaves_its_crash_its_own(
    fresh_nats: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    counted, suspect, final = asyncio.run(_scenario(fresh_nats().url))
    assert counted == [suspect], f"a recovery would count {len(counted)} running, the suspect ad alone among them"
    assert death_verdict(len(counted))  # its crash is its own: charged
    assert all(status == AdStatus.COMPLETED for status in final.values()), final
