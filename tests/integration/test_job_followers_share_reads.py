"""attack47 F5: the progress streams of one job on one API node share its reads. 2,000 idle
``GET /v1/jobs/{id}/events`` of a running replay each read the job every 0.25 s (~6,000 JetStream requests a
second): unrelated requests were answered 503 ``queue_unavailable`` and the node's /healthz took up to 4.5 s.
The API in-process over a real nats-server; a running job whose runner is another node (nothing here acts on it);
every read of the jobs bucket counted by a wrapper of the node's own ``JobStore.get``."""

from __future__ import annotations

import asyncio


from gamead_core.embedded import EmbeddedNats
from gamead_core.jobs.model import Job, JobState
from gamead_core.models import utcnow
from tests.jobs_support import api_beside_a_running_job

FOLLOWERS = 200
FOLLOWED_FOR = 2.0  #: seconds the followers wait before the job ends


def test_many_followers_of_a_job_read_it_as_one_and_all_see_its_end(nats_server: EmbeddedNats) -> None:
    async def scenario() -> tuple[int, list[list[JobState]]]:
        async with api_beside_a_running_job(nats_server.url) as (client, jobs, job):
            reads, get = [0], jobs.store.get

            async def counted(job_id: str) -> tuple[Job, int]:
                reads[0] += 1
                return await get(job_id)

            jobs.store.get = counted

            async def follower() -> list[JobState]:
                return [seen.state async for seen in jobs.follow(job.id, first=job)]

            followers = [asyncio.create_task(follower()) for _ in range(FOLLOWERS)]
            await asyncio.sleep(FOLLOWED_FOR)
            ended, revision = await get(job.id)  # its runner finishes it
            ended.state, ended.finished_at = JobState.SUCCEEDED, utcnow()
            await jobs.store.update(ended, revision)
            seen = await asyncio.wait_for(asyncio.gather(*followers), 30)
            return reads[0], seen

    reads, seen = asyncio.run(scenario())
    assert all(states[0] is JobState.RUNNING and states[-1] is JobState.SUCCEEDED for states in seen), seen[:3]
    # one read per 0.25 s for the node (~10 in 2.5 s); each follower reading its own made ~2,000
    assert reads <= 40, reads  # 1,600 before
