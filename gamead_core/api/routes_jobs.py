"""``/v1/jobs``: operator jobs (DLQ replay, purge, import): list, show, follow, cancel (operator role).

Any API node answers about any job: documents live in KV bucket ``gamead_jobs``. The router's lifespan starts
this node's :class:`~gamead_core.jobs.runner.JobService` (runs the jobs created here, resumes jobs whose runner
died) once the app's NATS link exists, and stops it (handing its jobs' leases back) on shutdown.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from starlette.responses import Response

from gamead_core.api.body import no_body
from gamead_core.api.contract import error_responses
from gamead_core.api.errors import JobFinished, JobsNotRunning
from gamead_core.api.responses import json_response
from gamead_core.api.job_answers import NDJSON, progress_stream
from gamead_core.api.schemas import NDJSON_JOB, JobPage
from gamead_core.audit import JobAudit, record_action
from gamead_core.dlq_ops import DlqOps
from gamead_core.errors import Conflict, NotFound, QueueUnavailable
from gamead_core.ids import id_tail, is_job_id, normal_id
from gamead_core.jobs.model import Job, JobKind, JobState
from gamead_core.jobs.runner import JobService
from gamead_core.jobs.store import JobStore


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start this node's job service (after the app's own lifespan made ``app.state.link``)."""
    settings = app.state.settings
    link = app.state.link
    # the API node's id less ``api-`` (runner_node maps it back), or one of the same form
    node_id = getattr(link, "node_id", "").removeprefix("api-") or f"{socket.gethostname()}-{os.getpid()}-{id_tail()}"

    def ops() -> DlqOps:
        return link.ops  # type: ignore[no-any-return]  # raises QueueUnavailable while NATS is away

    async def open_store() -> JobStore:
        await link.ready.wait()
        if link.js is None:
            raise QueueUnavailable("connecting to NATS")
        return await JobStore.open(link.js, reads=link.reads.js)  # lists on the reads connection

    jobs = JobService(settings, node_id, ops, audit=JobAudit(app.state.audit))  # every job is audited
    app.state.jobs = jobs
    await jobs.start(open_store)
    try:
        yield
    finally:
        await jobs.stop()


router = APIRouter(prefix="/v1/jobs", tags=["jobs"], lifespan=lifespan)


def _jobs(request: Request) -> JobService:
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise JobsNotRunning("operator jobs are not running on this API node")
    return jobs  # type: ignore[no-any-return]


_json = functools.partial(json_response, no_store=True)  #: live data: never cached


def _checked(job_id: str) -> str:
    """The job id of a path, lowercase (a ULID in capitals is the same id); 404 for one that is no job id. A route
    uses what this returns (or the document it reads with it), never its raw path value."""
    job_id = normal_id(job_id)
    if not is_job_id(job_id):
        raise NotFound(f"no job with id {job_id[:40]!r}: not a job id")
    return job_id


@router.get("", summary="Operator jobs, newest first", response_model=JobPage)
async def list_jobs(
    request: Request,
    kind: JobKind | None = None,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    """`{items, count}`: job documents (kept `jobs.retention` after their last change)."""
    items = await _jobs(request).list(kind=kind, state=state, limit=limit)
    return _json({"items": [j.wire() for j in items], "count": len(items)})


@router.get("/{job_id}", summary="One job; with `Accept: application/x-ndjson`, its progress stream",
            response_model=Job, responses={200: {"content": NDJSON_JOB}, **error_responses(404)})
async def get_job(job_id: str, request: Request) -> Response:
    """The job's document: state, phase, selection (with its fence), counts, skipped reasons, who started it,
    times, rate, stop reason, runner and lease. With `Accept: application/x-ndjson`: the document, then a
    line each time it changes, until the job ends (disconnecting never stops the job)."""
    jobs = _jobs(request)
    job = await jobs.get(_checked(job_id))
    if NDJSON in request.headers.get("accept", ""):
        return progress_stream(jobs, job)
    return _json(job.wire())


@router.get("/{job_id}/events", summary="A job's progress stream (NDJSON)", response_class=Response,
            responses={200: {"description": "One job document a line, until the job ends.", "content": NDJSON_JOB},
                       **error_responses(404)})
async def job_events(job_id: str, request: Request) -> Response:
    jobs = _jobs(request)
    job = await jobs.get(_checked(job_id))  # 404 before the stream starts; the stream's first line (attack27 F1)
    return progress_stream(jobs, job)


@router.post("/{job_id}/cancel", status_code=202, summary="Ask a job to stop", response_model=Job,
             responses=error_responses(404, 409))
async def cancel_job(job_id: str, request: Request) -> Response:
    """The job stops at its next checkpoint (about half a second); what it did stays done, the rest of its
    entries stay in the DLQ. 409 `job_finished` if it has already ended, whenever it ended: a cancel that met it
    ending (it read the job running, then the job's store said finished) got 409 `conflict` (attack39a F2)."""
    await no_body(request)  # takes none: a body is refused, never ignored (gamead_core.api.body)
    jobs = _jobs(request)
    job = await jobs.get(_checked(job_id))  # from here on, only the job's own (lowercase) id: attack27 F7
    if job.state.terminal:
        raise JobFinished(f"job {job.id} has already ended ({job.state.value})",
                          details={"state": job.state.value})
    await record_action(getattr(request.app.state, "audit", None), "job.cancel", job_id=job.id,
                        details={"kind": job.kind.value})  # before acting: no record, no cancel
    principal = getattr(request.state, "principal", None)
    try:
        job = await jobs.cancel(job.id, str(getattr(principal, "name", None) or "anonymous"))
    except Conflict:  # ended between the read above and the cancel's: the same answer as ended before it
        latest = await jobs.get(job.id)
        if not latest.state.terminal:
            raise
        raise JobFinished(f"job {latest.id} has already ended ({latest.state.value})",
                          details={"state": latest.state.value}) from None
    return _json(job.wire(), 202)
