"""`gamead doctor` names an ad analysed without a record (fix34b item 2, attack33b): its API withdrew it (the
client was told "not queued: safe to resend", GET 404) and a message of it was queued all the same (a reaper of a
gamead before the fence, which publishes without compare-and-set; a hand-made publish), so a worker analyses it,
its record made again from the message. Before, the doctor called it a benign note ("the worker recreates the
record from the message: a 202 is never lost"); the withdrawal marker now names the API
(``Gamead-Withdrawn``) and the doctor reports the finding ``analysed_without_record`` with the ad's id."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import nats

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.doctor.diagnose import diagnose
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import NotFound
from gamead_core.models import AdRecord, AdStatus, utcnow
from gamead_core.queue.publish import Outgoing, publish_ads
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import AdStore, encode
from gamead_core.store.create_fence import WITHDRAWN, withdraw_creates
from tests.support import start_worker, submission, wait_for

ORIGIN = "api-gone:77@2026-01-01T00:00:00+00:00"


def test_a_withdrawn_ad_whose_message_was_queued_is_a_finding_with_its_id(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """Figure: one ad withdrawn by its API's settling, then its message published as a reaper without the fence
    would: finding analysed_without_record, count 1, its id (before: no finding, a message_without_record note). An
    ad deleted otherwise (a blind delete marker, as `nats kv del`) with a message stays the note."""
    settings = GameadSettings(doctor={"settle": 0.2})

    async def go() -> tuple[list[str], object, object, str]:
        nc = await nats.connect(fresh_nats().url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, settings)
            store = await AdStore.open(nc, js)
            store.origin = ORIGIN
            withdrawn, deleted = (AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                                           ad=submission(title=t)) for t in ("Withdrawn", "Deleted"))
            revisions = [await store.create(r, encode(r)) for r in (withdrawn, deleted)]
            settled = await withdraw_creates(store, [withdrawn.id])  # the API's 503 "may be queued", settled
            await js.publish(f"$KV.gamead_ads.{deleted.id}", b"", headers={"KV-Operation": "DEL"})  # blind
            await publish_ads(js, [Outgoing(r.id, r.priority, encode(r), rev)
                                   for r, rev in zip((withdrawn, deleted), revisions, strict=True)],
                              timeout=5, partitions=settings.queue.partitions)
            report = (await diagnose(nc, js, settings, settle=0.2)).report
            finding, note = report.finding("analysed_without_record"), report.notes
            return [str(s) for s in settled], finding, note, withdrawn.id
        finally:
            await nc.close()

    settled, finding, notes, ad_id = asyncio.run(go())
    assert settled == [WITHDRAWN], settled
    assert finding is not None and finding.count == 1 and finding.items == [ad_id], finding
    assert "not queued" in finding.details[ad_id] and ORIGIN in finding.details[ad_id], finding.details
    unrecorded = [n for n in notes if n.code == "message_without_record"]
    assert len(unrecorded) == 1 and unrecorded[0].count == 1 and ad_id not in unrecorded[0].items, unrecorded


def test_a_node_of_a_gamead_before_the_fence_is_named(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """Rolling upgrade (fix34b item 3): a worker whose heartbeat says no ``fence`` (a gamead before it: its reaper
    re-publishes without compare-and-set) beside one that keeps it. Figure: finding unfenced_node, count 1, the old
    worker's id (before: nothing said)."""
    from gamead_core.registry import NodeInfo, Registry
    from gamead_core.registry.wire import CREATE_FENCE

    settings = GameadSettings(doctor={"settle": 0.2})

    def entry(node_id: str, fence: int | None) -> NodeInfo:
        return NodeInfo(id=node_id, role="worker", host="h", pid=5, version="0.1.0", started_at=utcnow(),
                        heartbeat_at=utcnow(), fence=fence)

    async def go() -> object:
        nc = await nats.connect(fresh_nats().url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, settings)
            registry = Registry(nc, js, settings.registry)
            await registry.put(entry("worker-old", None))
            await registry.put(entry("worker-new", CREATE_FENCE))
            return (await diagnose(nc, js, settings, settle=0.2)).report.finding("unfenced_node")
        finally:
            await nc.close()

    finding = asyncio.run(go())
    assert finding is not None and (finding.count, finding.items) == (1, ["worker-old"]), finding
    assert "compare-and-set" in finding.details["worker-old"], finding.details


def test_a_worker_neither_runs_nor_remakes_a_withdrawn_ad(fresh_nats: Callable[[], EmbeddedNats], procs: list,
                                                           tmp_path: Path) -> None:
    """The same withdrawn ad and its message (naming the create's revision, as a reaper without the fence would),
    now taken by a worker: it acknowledges the delivery without analysing the ad or making its record again, so
    GET /ads/{id} stays the 404 its client was told. Figure: the work stream empty and still no record (before: the
    record made again from the message and completed, the ad analysed behind its client's back)."""
    server = fresh_nats()
    settings = GameadSettings()

    async def setup() -> str:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, settings)
            store = await AdStore.open(nc, js)
            store.origin = ORIGIN
            record = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                              ad=submission(title="Withdrawn, then queued"))
            revision = await store.create(record, encode(record))
            assert await withdraw_creates(store, [record.id]) == [WITHDRAWN]
            await publish_ads(js, [Outgoing(record.id, record.priority, encode(record), revision)], timeout=5)
            return record.id
        finally:
            await nc.close()

    async def state(ad_id: str) -> tuple[int, str | None]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            messages = int((await js.stream_info(names.ADS_STREAM)).state.messages)
            try:
                status: str | None = (await (await AdStore.open(nc, js)).get(ad_id, consistent=True)).record.status
            except NotFound:
                status = None
            return messages, status
        finally:
            await nc.close()

    ad_id = asyncio.run(setup())
    worker = start_worker(server.url, tmp_path, ready=True)
    procs.append(worker)
    wait_for(lambda: asyncio.run(state(ad_id))[0] == 0, timeout=30, what="the worker to take the message")
    assert asyncio.run(state(ad_id)) == (0, None)
    wait_for(lambda: "acknowledged without analysing it" in worker.output(), timeout=10, what="the worker's line")
