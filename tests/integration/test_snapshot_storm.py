"""``GET /ads`` lists a window of 21,000 records whole while a writer rewrites them as fast as it can (attack35 F1;
``gamead_core.queue.snapshot``).

A writer thread (its own connection and event loop, like a worker fleet beside the API) rewrites records of the
bucket round and round, 256 writes in flight, for as long as the listing runs; the listing reads every record
(``scan_limit`` and ``limit`` 21,000). Figure before (HEAD e83dc32, the read chasing the rewrites with whole
records, ``follow``): ScanIncomplete ("kept changing faster than it was read: 38697 messages read, 17856 still
pending"; 38,311 / 18,037 in a second run). Now every record is listed exactly once, at one of its revisions,
while the writer wrote 50,960-63,256 records during the read (4 runs; one read took 11.5 s on a loaded box).
list37: the read takes the window's bodies in one pass first, then reads what was rewritten meanwhile by key, and
is quicker: the writer rewrote 11,520-13,312 records during it (not more than N any more: the premise is now a
quarter of N, and records read again, ``scanned`` 26,376-27,144 of 21,000), every record listed once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import nats
from nats.js.api import KeyValueConfig

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.snapshot import read_keys, read_snapshot
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import encode
from gamead_core.store.listing import records_page
from tests.nats_filter import PublishFilter, stalled_read_error
from tests.support import SAMPLE_AD

N = 21_000  #: records in the bucket, all in the listing's window
IN_FLIGHT = 256  #: the writer's publishes awaiting their ack at once
PAD = "p" * 900  #: ~1.3 KiB a record
#: seconds the fill's and the storm's writes wait for an ack: 256 in flight outwaited nats-py's 5 s at load 35-52
#: (load57: the writer ended on TimeoutError); the storm is the premise, not how fast one write is acked
STORM_ACK = 120.0


def _records() -> list[tuple[str, bytes, bytes]]:
    """Each record's subject and its two values (queued, processing): the writer flips between them."""
    ad = AdSubmission.model_validate({**SAMPLE_AD, "description": PAD})
    out = []
    for _ in range(N):
        rec = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(), ad=ad)
        out.append((names.kv_subject(names.ADS_BUCKET, rec.id), encode(rec),
                    encode(rec.model_copy(update={"status": AdStatus.PROCESSING}))))
    return out


async def _write_all(js: Any, records: list[tuple[str, bytes, bytes]], value: int) -> None:
    for i in range(0, len(records), IN_FLIGHT):
        await asyncio.gather(*(js.publish(subject, values[value])
                               for subject, *values in records[i:i + IN_FLIGHT]))


class _Writer(threading.Thread):
    """Rewrites the records round and round, as fast as it can, until ``stop``; ``writes`` counts them."""

    def __init__(self, url: str, records: list[tuple[str, bytes, bytes]]) -> None:
        super().__init__(daemon=True)
        self.url, self.records = url, records
        self.stop = threading.Event()
        self.started = threading.Event()
        self.writes = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 - shown by the test
            self.error = exc

    async def _run(self) -> None:
        nc = await nats.connect(self.url)
        js = nc.jetstream(timeout=STORM_ACK)
        value = 1
        try:
            while not self.stop.is_set():
                for i in range(0, N, IN_FLIGHT):
                    if self.stop.is_set():
                        break
                    await asyncio.gather(*(js.publish(subject, values[value])
                                           for subject, *values in self.records[i:i + IN_FLIGHT]))
                    self.writes += min(IN_FLIGHT, N - i)
                    self.started.set()
                value = 1 - value
        finally:
            await nc.close()


def test_a_listing_during_a_write_storm_lists_every_record_once(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()
    records = _records()
    writer = _Writer(server.url, records)

    async def run() -> tuple[Any, int]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, GameadSettings())
            await _write_all(nc.jetstream(timeout=STORM_ACK), records, 0)
            writer.start()
            assert await asyncio.to_thread(writer.started.wait, 30), "the writer never wrote"
            before = writer.writes
            page = await records_page(js, limit=N, scan_limit=N, timeout=10.0)
            return page, writer.writes - before
        finally:
            writer.stop.set()
            await asyncio.to_thread(writer.join, 30)
            await nc.close()

    page, written = asyncio.run(run())
    assert writer.error is None, writer.error
    ids = [rec.id for rec in page.records]
    assert len(ids) == len(set(ids)), "a record listed twice"
    assert page.total == N and set(ids) == {subject.rsplit(".", 1)[1] for subject, *_ in records}, \
        f"{page.total} of {N} records listed"
    assert written > N // 4 and page.scanned > N, \
        f"the writer wrote {written} records during the read, {page.scanned} read: not a storm"


def test_a_bucket_without_direct_gets_is_read_all_the_same(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """A bucket nats-py made without ``allow_direct`` (a ``gamead_jobs`` of an older gamead, until its topology
    check turns direct gets on) is read in stream order as before. Figure without the check: 503 no responders to
    the first direct get (``DirectGetsOff``), ``GET /v1/jobs`` failing."""
    server = fresh_nats()

    async def run() -> list[str]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            kv = await js.create_key_value(KeyValueConfig(bucket="OLD", history=1))
            for i in range(1_500):
                await kv.put(f"k{i:05d}", b"v")
            return [msg.subject async for msg in read_snapshot(js, "KV_OLD", "$KV.OLD.>")]
        finally:
            await nc.close()

    subjects = asyncio.run(run())
    assert len(subjects) == len(set(subjects)) == 1_500


def test_a_stall_while_the_keys_are_read_is_an_error(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """nats-server's deliveries stalled mid-read: a proxy forwards the key read's first 100 deliveries, then nothing
    from the server for 7 s (the read's timeout: 1 s; its probe's, nats-py's 5 s): the read raises, never hands back
    part of the keys as all of them. Figure without its stall check (the timeout taken for the end): 100 of 4,000
    keys returned, quietly. (Before, the server was SIGSTOPped once the read's consumer existed: a loaded CI run
    had the read finish first, 4,000 of 4,000, and the test failed.)"""
    server = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()

    async def run() -> int:
        nc = await nats.connect(proxy.url)
        try:
            js = nc.jetstream()
            kv = await js.create_key_value(KeyValueConfig(bucket="STALL", history=1, direct=True))
            for i in range(4_000):
                await kv.put(f"k{i:05d}", b"v" * 1024)
            proxy.stall_deliveries(after=100, seconds=7.0, subject="$KV.STALL.")
            return len(await read_keys(js, "KV_STALL", "$KV.STALL.>", timeout=1.0))
        finally:
            await nc.close()

    error = stalled_read_error(lambda: asyncio.run(run()), proxy, 4_000, "key")
    assert error.code in ("scan_incomplete", "queue_unavailable")
