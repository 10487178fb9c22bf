"""The job list (``GET /v1/jobs``) and the records' listing (``GET /ads``) show every job and ad at its last state
while they are being rewritten (fix35e; fix35b saw ``GET /v1/jobs`` list 2 of 3 running jobs in a loaded run).

Both read a KV bucket's stream (one revision per key) from its start to its end. A job (progress) or an ad
(queued → processing → completed) rewritten while the read runs loses the revision not read yet and gets one past
the end measured at the start: a read stopping there never saw it. Here on a real nats-server the newest
:data:`K` of :data:`N` keys are rewritten once the read's consumer exists (the tail not yet pushed: flow control
holds a push consumer far short of the ~3 MiB written). Figures before the fix (one run): jobs 2,968 of 3,000
listed, 32 of the 40 rewritten missing; ads ``total`` 2,960 of 3,000, the 40 rewritten missing from the first page.
Each is listed at the revision its read met: the new one, or the old one when nats-server had already delivered it
(a loaded machine can push the whole bucket before the rewrite lands; a listing is as of its read)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.ids import new_job_id
from gamead_core.jobs.model import Job, JobKind, JobState, Selection
from gamead_core.jobs.store import JobStore
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import AdStore
from gamead_core.store.listing import records_page
from tests.support import SAMPLE_AD

N, K = 3_000, 40
PAD = "p" * 900  #: ~1 KiB a key: the bucket's ~3 MiB are far more than nats-server pushes before flow control


async def _when_read_begins(url: str, stream: str, rewrite: Callable[[Any], Awaitable[None]]) -> None:
    """In the reader's own event loop: once ``stream`` has a consumer (the read's: nothing else reads it here), hold
    that loop while a thread of its own (its own connection and loop, as a worker writes beside an API) runs
    ``rewrite(js)``, so the rewrites land while the read is under way, whatever the machine's load. list37: in the
    reader's loop the rewrites waited for the turns the read gives every 64 messages, and landed after it; session
    38: with the thread alone a loaded machine let the read pass the rewritten keys first (2 of 3 fresh clones)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + 10
        while (await js.stream_info(stream)).state.consumer_count == 0:
            assert time.monotonic() < deadline, "the read never began"
            await asyncio.sleep(0.002)
    finally:
        await nc.close()

    async def run() -> None:
        other = await nats.connect(url)
        try:
            await rewrite(other.jetstream())
        finally:
            await other.close()

    writer = threading.Thread(target=asyncio.run, args=(run(),))
    writer.start()
    writer.join()  # not awaited: the read's loop stands still meanwhile, no message of it handled


def _on_fresh_nats(server: EmbeddedNats, body: Callable[[Any], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        nc = await nats.connect(server.url)
        try:
            await ensure_topology(nc.jetstream(), GameadSettings())
            return await body(nc)
        finally:
            await nc.close()

    return asyncio.run(run())


def test_jobs_rewritten_while_listed_are_all_listed(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()
    url = server.url

    async def body(nc: Any) -> tuple[list[Job], list[str]]:
        js = nc.jetstream()
        store = await JobStore.open(js)
        jobs, revisions = [], []
        for _ in range(N):
            job = Job(id=new_job_id(), kind=JobKind.PURGE, state=JobState.RUNNING, selection=Selection(mode="all"),
                      started_by="op", created_at=utcnow(), runner="api-1", stop_reason=PAD)
            revisions.append(await store.create(job))
            jobs.append(job)

        async def progress(js: JetStreamContext) -> None:
            other = await JobStore.open(js)
            await asyncio.gather(*(other.update(job.model_copy(update={"resumes": 1}), rev)
                                   for job, rev in zip(jobs[-K:], revisions[-K:], strict=True)))

        listed, _ = await asyncio.gather(store.list(state=JobState.RUNNING, limit=N),
                                         _when_read_begins(url, names.kv_stream(names.JOBS_BUCKET), progress))
        return listed, [job.id for job in jobs[-K:]]

    listed, rewritten = _on_fresh_nats(server, body)
    assert len(listed) == N, f"{len(listed)} of {N} running jobs listed (figure before the fix: 2,968)"
    # each rewritten job listed, at the revision its read met: the old one if nats-server had already delivered it
    # (a listing is as of its read), the new one if not (session 38: a loaded machine delivered the whole bucket
    # before the rewrite, 2 of 3 fresh clones); before the fix they were missing
    assert {job.id for job in listed} >= set(rewritten)


def test_ads_rewritten_while_listed_are_all_listed(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()
    url = server.url

    async def body(nc: Any) -> tuple[Any, list[str]]:
        js = nc.jetstream()
        store = await AdStore.open(nc, js)
        ad = AdSubmission.model_validate({**SAMPLE_AD, "description": PAD})
        records, revisions = [], []
        for _ in range(N):
            rec = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(), ad=ad)
            revisions.append(await store.create(rec))
            records.append(rec)

        async def analyse(js: JetStreamContext) -> None:
            other = await AdStore.open(js._nc, js)
            await asyncio.gather(*(other.update(rec.model_copy(update={"status": AdStatus.PROCESSING}), rev)
                                   for rec, rev in zip(records[-K:], revisions[-K:], strict=True)))

        page, _ = await asyncio.gather(records_page(js, limit=50, timeout=5.0),
                                       _when_read_begins(url, names.ADS_BUCKET_STREAM, analyse))
        return page, [rec.id for rec in records[-K:]]

    page, rewritten = _on_fresh_nats(server, body)
    assert page.total == N, f"total {page.total} of {N} ads (figure before the fix: 2,960)"
    assert len(page.records) == 50 and page.next_cursor is not None
    shown = {rec.id: rec.status for rec in page.records}
    # each rewritten ad shown (newest first: the page holds them), at the revision its read met (see the jobs' test)
    assert all(shown.get(ad_id) in (AdStatus.QUEUED, AdStatus.PROCESSING) for ad_id in rewritten), "one missing"
