"""The job list (``GET /v1/jobs``) and the records' listing (``GET /ads``) show every job and ad at its last state
while they are being rewritten (fix35e; fix35b saw ``GET /v1/jobs`` list 2 of 3 running jobs in a loaded run).

Both read a KV bucket's stream (one revision per key) from its start to its end. A job (progress) or an ad
(queued → processing → completed) rewritten while the read runs loses the revision not read yet and gets one past
the end measured at the start: a read stopping there never saw it. Here on a real nats-server the newest
:data:`K` of :data:`N` keys are rewritten while the read stands after its first :data:`HELD_AT` deliveries: the
reader's connection goes through a proxy that holds nats-server's bytes there (``tests.nats_filter``) until the
rewrites are stored, and the tail cannot have been pushed yet (a push consumer's flow control holds nats-server
~2 MiB past what the client answered, far short of the ~3 MiB written). Figures before the fix (one run): jobs
2,968 of 3,000 listed, 32 of the 40 rewritten missing; ads ``total`` 2,960 of 3,000, the 40 rewritten missing
from the first page. Each rewritten one is listed at its new revision. Before (flake39), the rewrites began once
the read's consumer existed, polled beside the read: a loaded machine let the read pass the rewritten keys
first, so the test had been loosened to take the old revision too, and then passed without the fix as well."""

from __future__ import annotations

import asyncio
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
from tests.nats_filter import PublishFilter
from tests.support import SAMPLE_AD
from tests.waits import until

N, K = 3_000, 40
PAD = "p" * 900  #: ~1 KiB a key: the bucket's ~3 MiB are far more than nats-server pushes before flow control
HELD_AT = 100  #: deliveries of the read before the proxy holds it for the rewrites


async def _while_read_held(url: str, proxy: PublishFilter, rewrite: Callable[[Any], Awaitable[None]]) -> None:
    """Once ``proxy`` holds the read (after its first :data:`HELD_AT` deliveries), run ``rewrite(js)`` on a
    connection of its own (``url``: not through the proxy, as a worker writes beside an API), then let the read go
    on."""
    try:
        other = await nats.connect(url)
        try:
            await until(lambda: proxy.holds, timeout=30, interval=0.002, what="the read held at the proxy")
            await rewrite(other.jetstream())
        finally:
            await other.close()
    finally:
        proxy.release()


def _on_fresh_nats(server: EmbeddedNats, body: Callable[[Any, PublishFilter], Awaitable[Any]]) -> Any:
    """``body(nc, proxy)`` on ``server`` with the gamead topology: ``nc`` goes through ``proxy`` (``body`` arms its
    hold once it has written the bucket: :func:`_hold`)."""
    proxy = PublishFilter(("127.0.0.1", server.port)).start()

    async def run() -> Any:
        nc = await nats.connect(proxy.url)
        try:
            await ensure_topology(nc.jetstream(), GameadSettings())
            return await body(nc, proxy)
        finally:
            await nc.close()

    try:
        return asyncio.run(run())
    finally:
        proxy.stop()


def _hold(proxy: PublishFilter, bucket: str) -> None:
    """Have ``proxy`` hold the next read of ``bucket`` after its first :data:`HELD_AT` deliveries."""
    proxy.stall_deliveries(after=HELD_AT, seconds=None, subject=names.kv_prefix(bucket))


def test_jobs_rewritten_while_listed_are_all_listed(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()
    url = server.url

    async def body(nc: Any, proxy: PublishFilter) -> tuple[list[Job], list[str]]:
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

        _hold(proxy, names.JOBS_BUCKET)
        listed, _ = await asyncio.gather(store.list(state=JobState.RUNNING, limit=N),
                                         _while_read_held(url, proxy, progress))
        return listed, [job.id for job in jobs[-K:]]

    listed, rewritten = _on_fresh_nats(server, body)
    assert len(listed) == N, f"{len(listed)} of {N} running jobs listed (figure before the fix: 2,968)"
    assert {job.id for job in listed if job.resumes == 1} == set(rewritten)  # at their last revision


def test_ads_rewritten_while_listed_are_all_listed(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()
    url = server.url

    async def body(nc: Any, proxy: PublishFilter) -> tuple[Any, list[str]]:
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

        _hold(proxy, names.ADS_BUCKET)
        page, _ = await asyncio.gather(records_page(js, limit=50, timeout=5.0),
                                       _while_read_held(url, proxy, analyse))
        return page, [rec.id for rec in records[-K:]]

    page, rewritten = _on_fresh_nats(server, body)
    assert page.total == N, f"total {page.total} of {N} ads (figure before the fix: 2,960)"
    assert len(page.records) == 50 and page.next_cursor is not None
    shown = {rec.id: rec.status for rec in page.records}
    # each rewritten ad shown (newest first: the page holds them), at its last revision
    assert all(shown.get(ad_id) == AdStatus.PROCESSING for ad_id in rewritten), "a rewritten ad missing or stale"
