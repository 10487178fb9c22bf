"""attack39a F2: ``POST /v1/jobs/{id}/cancel`` that meets the job ending — the route read it running, and by the
cancel's own read it had ended — answered 409 ``conflict`` ("has already finished (cancelled)"), where a cancel a few
ms later got the README's 409 ``job_finished`` for the same situation (6 rounds of 8 cancels: 4 ``conflict`` in one).
The API in-process over a real nats-server; the ending is made certain by writing it to the job's document (a real
KV write) between the route's read and the cancel's, in a wrapper of the node's own ``JobService.cancel``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from gamead_core.embedded import EmbeddedNats
from gamead_core.jobs.model import JobState
from gamead_core.models import utcnow
from tests.jobs_support import api_beside_a_running_job


def test_a_cancel_that_meets_the_job_ending_is_job_finished(nats_server: EmbeddedNats) -> None:
    async def scenario() -> httpx.Response:
        async with api_beside_a_running_job(nats_server.url) as (client, jobs, job):
            cancel = jobs.cancel

            async def ends_first(job_id: str, by: str) -> Any:
                ended, revision = await jobs.store.get(job_id)  # its runner finishes it just now
                ended.state, ended.finished_at = JobState.CANCELLED, utcnow()
                await jobs.store.update(ended, revision)
                return await cancel(job_id, by)

            jobs.cancel = ends_first
            return await client.post(f"/v1/jobs/{job.id}/cancel")

    answer = asyncio.run(scenario())
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "job_finished" and error["details"] == {"state": "cancelled"}, error
