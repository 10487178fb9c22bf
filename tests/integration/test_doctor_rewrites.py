"""`gamead doctor` judges every record the store held while it read, records rewritten during its read included
(doctor36). Its key listing (headers only, an ordered consumer over the records' stream) stopped at the stream's
last sequence as measured when it began; the bucket keeps one revision per key, so a record rewritten ahead of
the listing loses the revision not read yet and gets a sequence past that end: never listed, never judged, and
the report said ``every invariant holds`` over a read that had not covered the store.

On a real nats-server: :data:`N` completed records (headers only to the doctor) and, newest, :data:`K` records
``queued`` without a work message (``no_message``, invariant 1), each rewritten unchanged while the doctor's
listing stands after its first :data:`HELD_AT` deliveries: its connection goes through a proxy that holds
nats-server's bytes there until the rewrites are stored (``tests.nats_filter``; the tail not pushed yet: flow
control holds a push consumer short of the store). Before (flake39), the rewrites began once the records' stream
had a consumer, polled beside the listing: a loaded machine could let the listing pass the rewritten records
first. Figure before the fix (three runs alike): ``records`` 20,001 of 20,040 listed, 39 of the 40 broken records
never judged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import nats
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.doctor import diagnose
from gamead_core.doctor.model import Report
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import encode
from tests.nats_filter import PublishFilter
from tests.support import ad
from tests.waits import until

N, K = 20_000, 40
HELD_AT = 100  #: deliveries of the doctor's key listing before the proxy holds it for the rewrites
SETTINGS = GameadSettings(doctor={"settle": 0.1})
FINAL = {"Nats-TTL": "3600"}  #: what a completed record carries (gamead_core.store.retention)


async def _fill(js: JetStreamContext) -> list[AdRecord]:
    """N completed records, then K queued ones without a message (the newest K of the stream); the K returned."""
    now, prefix = utcnow(), names.kv_prefix(names.ADS_BUCKET)
    sub = AdSubmission.model_validate(ad("Rewritten while read"))
    for i in range(N):
        done = AdRecord(id=new_ad_id(), status=AdStatus.COMPLETED, priority=3, submitted_at=now, ad=sub,
                        attempts=1, completed_at=now)
        await js.publish_async(f"{prefix}{done.id}", encode(done), headers=FINAL)
        if i % 1000 == 999:
            await js.publish_async_completed()
    broken = [AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=3, submitted_at=now, ad=sub)
              for _ in range(K)]
    for record in broken:
        await js.publish(f"{prefix}{record.id}", encode(record))
    await js.publish_async_completed()
    return broken


async def _rewrite_while_held(js: JetStreamContext, proxy: PublishFilter, broken: list[AdRecord]) -> None:
    """Once ``proxy`` holds the doctor's key listing (after its first :data:`HELD_AT` deliveries), write each of
    ``broken`` again, unchanged (any writer's update of a record: a new revision, a new sequence), on ``js`` (the
    test's own connection, not held), then let the listing go on."""
    prefix = names.kv_prefix(names.ADS_BUCKET)
    try:
        await until(lambda: proxy.holds, timeout=30, interval=0.002, what="the doctor's listing held at the proxy")
        bodies = [(f"{prefix}{record.id}", encode(record)) for record in broken]
        for subject, body in bodies:  # pipelined: all of them sent before the first answer
            await js.publish_async(subject, body)
        await js.publish_async_completed()
    finally:
        proxy.release()


def test_records_rewritten_while_the_doctor_reads_are_judged(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()

    async def main() -> tuple[Report, list[str]]:
        nc = await nats.connect(server.url)
        doctors = await nats.connect(proxy.url)  # the doctor's connection, held mid-listing
        js = nc.jetstream(timeout=30)
        try:
            await ensure_topology(js, SETTINGS)
            broken = await _fill(js)
            proxy.stall_deliveries(after=HELD_AT, seconds=None, subject=names.kv_prefix(names.ADS_BUCKET))
            found, _ = await asyncio.gather(diagnose(doctors, doctors.jetstream(timeout=30), SETTINGS),
                                            _rewrite_while_held(js, proxy, broken))
            return found.report, [r.id for r in broken]
        finally:
            await doctors.close()
            await nc.close()

    try:
        report, broken = asyncio.run(main())
    finally:
        proxy.stop()
    wire: dict[str, Any] = report.wire(K)
    counts = {f["kind"]: f["count"] for f in wire["findings"]}
    assert report.read.records == N + K, (
        f"{report.read.records} of {N + K} records listed (before the fix: 20,001, 39 rewritten ones missing)")
    assert counts == {"no_message": K}, f"{counts} (before the fix: 39 of them never judged)"
    assert sorted(wire["findings"][0]["sample"]) == sorted(broken)
    assert report.complete, report.partial


def test_suspects_the_second_look_cannot_read_again_are_said_unsettled(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """The run's ``doctor.scan_time`` (3 s) ends during its ``settle`` (4 s): the K suspects of the first look are
    not read again. The report is partial and says they were neither reported nor cleared (before: only
    ``records: read 0 of them, then stopped at doctor.scan_time``, as if the key listing had stopped)."""
    server = fresh_nats()
    settings = GameadSettings(doctor={"settle": 4.0, "scan_time": 3.0})

    async def main() -> Report:
        nc = await nats.connect(server.url)
        js = nc.jetstream(timeout=30)
        try:
            await ensure_topology(js, settings)
            now, prefix = utcnow(), names.kv_prefix(names.ADS_BUCKET)
            sub = AdSubmission.model_validate(ad("Never read again"))
            for _ in range(K):
                record = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=3, submitted_at=now, ad=sub)
                await js.publish(f"{prefix}{record.id}", encode(record))
            return (await diagnose(nc, js, settings)).report
        finally:
            await nc.close()

    report = asyncio.run(main())
    assert not report.complete and report.findings and not any(f.count for f in report.findings)
    said = [why for why in report.partial if why.startswith("second look:")]
    assert said == [f"second look: {K} suspect ad(s) whose record could not be read again: neither reported nor "
                    "cleared (run the doctor again)"], report.partial
