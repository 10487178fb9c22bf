"""regress39 F3: a cancel that takes effect once a job's work is all done ended it ``cancelled`` (12 of 15 replays
cancelled after every ad was replayed and settled: ``replayed 2 of 2 matched · completed 1 · dead again 1``, state
``cancelled``). Now it ends as it would have, its ``stopReason`` saying the cancel came after
(``gamead_core.jobs.policy.cancelled_end``). The API in-process over a real nats-server; the job's runner is gone
(its lease passed), so the node ends the job itself on the cancel (or on its own sweep, the cancel asked for).

Figure without the fix: the job's state ``cancelled``, stopReason ``cancelled by anonymous (its runner api-gone had
stopped)``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from gamead_core.api.app import create_app
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.ids import new_job_id
from gamead_core.jobs.model import Job, JobKind, JobPhase, JobState, Selection
from gamead_core.jobs.policy import cancelled_end
from gamead_core.models import utcnow
from tests.support import until_ready
from tests.waits import until

DONE = {"matched": 2, "done": 2, "remaining": 0, "replayed": 2, "skipped": 0, "completed": 1, "deadAgain": 1,
        "stillRunning": 0}


async def _answers(client: httpx.AsyncClient, path: str) -> bool:
    return (await client.get(path)).status_code == 200


def test_a_cancel_after_every_item_is_done_ends_the_job_as_it_would_have(nats_server: EmbeddedNats) -> None:
    async def scenario() -> tuple[httpx.Response, dict[str, Any]]:
        app = create_app(GameadSettings(ratelimit={"enabled": False}), nats_server.url)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            await until_ready(client)
            # the jobs' bucket opens in the background after /readyz (its first try may time out at load: hang50)
            await until(lambda: _answers(client, "/v1/jobs"), timeout=30, interval=0.1, what="the jobs to be served")
            job = Job(id=new_job_id(), kind=JobKind.REPLAY, state=JobState.RUNNING, phase=JobPhase.FOLLOWING,
                      selection=Selection(mode="all"), counts=dict(DONE), started_by="test", created_at=utcnow(),
                      runner="api-gone", lease_until=time.time() - 7200, lease_ttl=30)  # its runner died
            await app.state.jobs.store.create(job)
            answer = await client.post(f"/v1/jobs/{job.id}/cancel")
            async def ended() -> dict[str, Any] | None:
                doc = (await client.get(f"/v1/jobs/{job.id}")).json()
                return None if doc["state"] in ("running", "queued") else doc

            return answer, await until(ended, timeout=10, interval=0.1, what="the job to end")

    answer, doc = asyncio.run(scenario())
    assert answer.status_code in (202, 409), answer.text
    assert doc["state"] == "succeeded", doc
    assert doc["stopReason"] == "the cancel by anonymous came after all its work was done (its runner api-gone had " \
                                "stopped)", doc


def test_a_cancel_with_work_left_still_cancels() -> None:
    """The rule's other side: an item remaining, or a replayed ad not settled yet, and the job is cancelled."""
    final = (JobState.SUCCEEDED, None)
    assert cancelled_end({**DONE, "remaining": 1}, "op1", final) == (JobState.CANCELLED, "cancelled by op1")
    assert cancelled_end({**DONE, "stillRunning": 1}, "op1", final)[0] == JobState.CANCELLED
    assert cancelled_end({}, "op1", final)[0] == JobState.CANCELLED  # nothing selected yet
    assert cancelled_end(DONE, "op1", (JobState.FAILED, "failure rate 60% over 50%")) == (
        JobState.FAILED, "failure rate 60% over 50%; the cancel by op1 came after all its work was done")
