"""A job resumed by another API node (its runner's lease expired: the node died) is in the audit trail: action
``job.takeover``, ``details`` ``fromNode`` / ``toNode``, the job's owner as actor, shown by ``gamead audit``'s
SELECTION column as ``from A to B`` (left40). The API in-process over a real nats-server of its own (on the session
NATS another module's API could resume the orphaned job first: suite46's full run); the dead runner is a document
whose lease passed an hour ago.

Figure without the fix: the job resumed (``resumes`` 1, ``runner`` this node) and ``GET /v1/audit?jobId=`` listed
its end only (``purge`` succeeded by alice): no record said another node took it over, nor from which.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from gamead_cli.tui.view_audit import audit_selection
from gamead_core.api.app import create_app
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.ids import new_job_id
from gamead_core.jobs.model import Job, JobKind, JobState, Selection
from gamead_core.models import utcnow
from tests.support import until_ready
from tests.waits import until


def test_a_job_resumed_by_another_node_is_audited_with_both_nodes(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    nats_server = fresh_nats()

    async def scenario() -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
        app = create_app(GameadSettings(ratelimit={"enabled": False}, jobs={"lease": 1}), nats_server.url)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            await until_ready(client)
            job = Job(id=new_job_id(), kind=JobKind.PURGE, state=JobState.RUNNING, selection=Selection(
                mode="filter", filter={"errorClass": "NoSuchErrorLeft40"}), started_by="alice", created_at=utcnow(),
                runner="api-gone", lease_until=time.time() - 3600, lease_ttl=1)  # its node died an hour ago
            await app.state.jobs.store.create(job)
            docs: list[dict[str, Any]] = [{}]

            async def audited() -> list[dict[str, Any]]:
                """The job's audit records once another node resumed it (none before)."""
                docs[0] = (await client.get(f"/v1/jobs/{job.id}")).json()
                if docs[0]["resumes"] == 0:
                    return []
                return (await client.get("/v1/audit", params={"jobId": job.id})).json()["items"]

            records = await until(audited, timeout=30, interval=0.2, what=lambda: f"the takeover audited ({docs[0]})")
            return app.state.jobs.node_id, docs[0], records

    node, doc, records = asyncio.run(scenario())
    assert doc["runner"] == node and doc["resumes"] == 1, doc
    taken = [r for r in records if r["action"] == "job.takeover"]
    assert len(taken) == 1, records
    assert taken[0]["actor"] == "alice" and taken[0]["outcome"] == "accepted", taken
    assert taken[0]["details"]["fromNode"] == "api-gone" and taken[0]["details"]["toNode"] == node, taken
    assert audit_selection(taken[0]) == f"from api-gone to {node}"
