"""How a route that starts or follows an operator job answers: the job's document (202), or with ``Accept:
application/x-ndjson`` its progress stream (200). Used by ``/v1/dlq``, ``/v1/jobs`` and ``/v1/doctor``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from fastapi import Request
from starlette.responses import Response, StreamingResponse

from gamead_core.api.errors import JobsNotRunning
from gamead_core.api.responses import json_response as _json
from gamead_core.jobs.model import Job
from gamead_core.jobs.runner import JobService

NDJSON = "application/x-ndjson"


def jobs_of(request: Request) -> JobService:
    """This node's job service, or 503 ``jobs_not_running``."""
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise JobsNotRunning("operator jobs are not running on this API node")
    return jobs  # type: ignore[no-any-return]


def job_response(request: Request, job: Job, status: int = 202) -> Response:
    """A job's document (``status``), or (``Accept: application/x-ndjson``) its progress stream (200)."""
    location = {"Location": f"/v1/jobs/{job.id}"}
    if NDJSON in request.headers.get("accept", ""):
        return progress_stream(jobs_of(request), job, 200, location)
    return _json(job.wire(), status, location)


def progress_stream(jobs: JobService, job: Job, status: int = 200,
                    headers: dict[str, str] | None = None) -> StreamingResponse:
    """NDJSON: ``job`` (the document the route has just read: an unknown job was its 404, before any answer
    started, attack27 F1), then a line each time it changes, until it finishes. Disconnecting never stops the job
    (it runs in its own task)."""

    async def lines() -> AsyncIterator[bytes]:
        async for seen in jobs.follow(job.id, first=job):
            yield orjson.dumps(seen.wire()) + b"\n"

    return StreamingResponse(lines(), status_code=status, media_type=NDJSON,
                             headers={"Cache-Control": "no-store", **(headers or {})})
