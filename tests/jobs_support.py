"""Jobs as tests of the API's job routes need them, written with the node's own store."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from gamead_core.api.app import create_app
from gamead_core.config import GameadSettings
from gamead_core.ids import new_job_id
from gamead_core.jobs.model import Job, JobKind, JobState, Selection
from gamead_core.models import utcnow
from tests.support import until_ready


def running_elsewhere() -> Job:
    """A replay of every DLQ entry, ``running`` under a live lease (an hour ahead) of another node,
    ``api-elsewhere``: the node under test follows or cancels it but never runs or takes it over."""
    return Job(id=new_job_id(), kind=JobKind.REPLAY, state=JobState.RUNNING, selection=Selection(mode="all"),
               started_by="test", created_at=utcnow(), runner="api-elsewhere", lease_until=time.time() + 3600)


@contextlib.asynccontextmanager
async def api_beside_a_running_job(nats_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Any, Job]]:
    """An API node in-process on ``nats_url`` (rate limits off), ready, with :func:`running_elsewhere` stored in
    its jobs bucket: yields ``(client, the node's JobService, the job)``."""
    app = create_app(GameadSettings(ratelimit={"enabled": False}), nats_url)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        await until_ready(client)
        jobs = app.state.jobs
        job = running_elsewhere()
        await jobs.store.create(job)
        yield client, jobs, job
