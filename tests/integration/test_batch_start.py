"""The batch start (gamead_core.worker.batch_start, session 36): a worker runs the first deliveries of a start step
in one task, not a handler task and coroutine chain each (issue 14: the per-ad shape was the worker's biggest
cost left above the protocol floor), and every ad ends as its handler would have ended it. On a real nats-server,
one worker in process at the default settings drains a backlog written as ``POST /ads`` writes it (record first,
then the message naming its revision), with among it a message no API published (poison: handed to the handler,
terminated), an ad its API withdrew after its message landed (its record deleted with the withdrawal marker:
acknowledged, its record not made again, as the handler does) and one whose record was rewritten behind its
message (the batch's compare-and-set loses: read again and completed, as the handler finishes it). Figure: 120
fresh ads ran in 120 handler tasks before (one per ad; 122 with the poison and withdrawn ones), 1 now (the
poison message); the bound is a quarter of the ads (the handler also takes ads handed back from the prefetch
buffer under load, redelivered)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import nats

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.errors import NotFound
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import AdStore, encode
from gamead_core.worker.analyzer import analyze
from gamead_core.worker.runtime import Worker
from tests.support import ad
from tests.waits import until

FRESH = 120


async def _publish(js: Any, record: AdRecord, revision: int | None, ad_id: str | None = None) -> None:
    headers = {names.HDR_MSG_ID: record.id, names.HDR_AD_ID: ad_id or record.id}
    if revision is not None:
        headers[names.HDR_RECORD_REVISION] = str(revision)
    await js.publish(names.level_subject(record.priority), encode(record), headers=headers)


async def _drain(url: str) -> dict[str, Any]:
    settings = GameadSettings()
    nc = await nats.connect(url)
    tasks: Counter[str] = Counter()
    loop = asyncio.get_running_loop()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        tasks[getattr(coro, "__qualname__", "?")] += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    try:
        js = nc.jetstream()
        await ensure_topology(js, settings)
        store = await AdStore.open(nc, js)
        records = [AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=1 + i % 5, submitted_at=utcnow(),
                            ad=AdSubmission.model_validate(ad(f"Batch {i}", priority=1 + i % 5)))
                   for i in range(FRESH + 1)]
        withdrawn = records.pop()
        for record in records:
            await _publish(js, record, await store.create(record))
        bumped = records[7]  # rewritten behind its message (an operator): its outcome's compare-and-set loses
        current = await store.get(bumped.id)
        await store.update(current.record, current.revision)
        revision = await store.create(withdrawn)
        await _publish(js, withdrawn, revision)  # landed, yet its API withdrew it (the 503'd submit's settling)
        assert await store.withdraw_many([(withdrawn.id, revision)]) == [None]
        poison = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(),
                          ad=AdSubmission.model_validate(ad("Poison")))
        await _publish(js, poison, 1, ad_id="not-an-issued-id")
        loop.set_task_factory(counting)
        stop = asyncio.Event()
        running = asyncio.create_task(Worker(settings, url, worker_id="batch-start").run(stop))
        async def drained() -> bool:
            return not (await js.stream_info(names.ADS_STREAM)).state.messages

        await until(drained, timeout=60, what="every message acknowledged")
        left = (await js.stream_info(names.ADS_STREAM)).state.messages
        stop.set()
        await asyncio.wait_for(running, 30)
        loop.set_task_factory(None)
        final = [(await store.get(r.id)).record for r in records]
        try:
            await store.get(withdrawn.id)
            made_again = True
        except NotFound:
            made_again = False
        return {"records": records, "final": final, "left": left, "tasks": tasks, "made_again": made_again}
    finally:
        loop.set_task_factory(None)
        await nc.close()


def test_a_backlogs_first_deliveries_start_in_batches_and_end_as_their_handler_would(fresh_nats: Any) -> None:
    out = asyncio.run(_drain(fresh_nats().url))
    assert out["left"] == 0  # every message acknowledged: the fresh ads, the withdrawn one, the poison (terminated)
    for record, final in zip(out["records"], out["final"], strict=True):
        assert final.status == AdStatus.COMPLETED and final.attempts == 1, (record.id, final.status)
        assert final.analysis == analyze(record.ad)  # the analysis of its own ad, written once
    assert out["made_again"] is False  # acknowledged without its record being made again
    handler_tasks = out["tasks"]["Worker._run_one"]
    # before: 120 + 2, one per delivery; a loaded machine (load 30, fresh clone at fee0e2b: 34) starts fewer per step
    assert handler_tasks <= FRESH // 2, out["tasks"]
