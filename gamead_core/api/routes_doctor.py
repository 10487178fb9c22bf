"""``/v1/doctor``: check every invariant (``GET``), repair what can be repaired safely (``POST /repair``, a job).
Operator role only, reads included (the route class ``doctor`` of ``gamead_core.api.auth``): the report
names ads, and a run reads the whole store.

One run at a time per API node: concurrent ``GET`` s share the run in progress (with the first one's ``settle``),
and a client that disconnects does not stop it for the others. A run reads the whole store, so this bounds
what any number of requests can cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from starlette.responses import Response

from gamead_core.api.body import no_body
from gamead_core.api.contract import error_responses
from gamead_core.api.errors import JobsNotRunning
from gamead_core.api.repair_claim import claim, refuse_while_repairing, release
from gamead_core.api.responses import json_response
from gamead_core.api.job_answers import job_response
from gamead_core.api.state import QueueLink
from gamead_core.config.section import Seconds
from gamead_core.doctor import redis_writes
from gamead_core.doctor.diagnose import Doctor
from gamead_core.doctor.model import Report
from gamead_core.doctor.repair import RepairOps
from gamead_core.doctor.verdict import add
from gamead_core.ids import new_job_id
from gamead_core.jobs.model import JobKind, Selection
from gamead_core.jobs.runner import JobService
from gamead_core.redis_link import RedisLink
from gamead_core.stop_bound import ended


class _OneRun:
    """The doctor run in progress on this node, shared by concurrent requests."""

    def __init__(self) -> None:
        self._runs: dict[str, asyncio.Task[Report]] = {}
        self.repairs = asyncio.Lock()  #: held from a repair's look for a running one to its job's creation

    async def report(self, link: QueueLink, settings: Any, settle: float, redis: RedisLink | None = None) -> Report:
        """The report of the run in progress, or of a new one: every invariant (:class:`Doctor`), and whether
        this node's Redis (``redis``, None when not configured) takes writes (``redis_unwritable``)."""
        task = self._runs.get("run")
        if task is None:
            store = link.store  # raises QueueUnavailable while NATS is away
            reads = link.reads  # its own connection: its scans never ahead of a submit's ack (api.read_conn)
            assert reads.nc is not None and reads.js is not None
            doctor = Doctor(reads.nc, reads.js, settings, store=store)

            async def run() -> Report:
                diagnosis, refused = await asyncio.gather(doctor.diagnose(settle=settle),
                                                          redis_writes.check(redis, settle))
                report = diagnosis.report
                finding = report.finding("redis_unwritable")
                for item, detail in refused.items():
                    if finding is not None:
                        add(finding, item, detail)
                return report

            task = asyncio.create_task(run(), name="gamead-doctor")
            self._runs["run"] = task
            task.add_done_callback(lambda _t: self._runs.pop("run", None))
        return await asyncio.shield(task)

    async def cancel(self) -> None:
        """Stop every run in progress (the node is shutting down)."""
        await ended(list(self._runs.values()), 3.0, "the doctor's run")  # a cancel taken by a NATS await (hang50)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Give this node's job service the doctor's repair actions (``repair`` jobs, resumed ones included)."""
    link: QueueLink = app.state.link
    settings = app.state.settings
    jobs = getattr(app.state, "jobs", None)

    def repairs() -> RepairOps:
        store = link.store  # raises QueueUnavailable while NATS is away
        assert link.nc is not None and link.js is not None
        return RepairOps(link.nc, link.js, settings, store=store, jobs=jobs,
                         publish_timeout=settings.api.publish_timeout)

    if jobs is not None:
        jobs.repairs = repairs
    runs = app.state.doctor = _OneRun()
    try:
        yield
    finally:
        await runs.cancel()


router = APIRouter(prefix="/v1/doctor", tags=["doctor"], lifespan=lifespan)


@router.get("", summary="Check every invariant: what is broken, with counts and ad ids (operator)")
async def get_doctor(
    request: Request,
    settle: Annotated[Seconds | None, Query(ge=0, le=10, description="Seconds before a finding is checked again "
                                                                     "(default doctor.settle): a number or a duration "
                                                                     "(`500ms`, `2s`: README Durations).")] = None,
    sample: Annotated[int | None, Query(ge=1, le=1000, description="Ids shown per kind (default "
                                                                   "doctor.sample).")] = None,
) -> Response:
    """`{ok, complete, partial, checkedAt, elapsedSeconds, settleSeconds, problems, findings, notes, read}`.
    `ok` when every invariant holds and everything was read; each finding: `kind`, `invariant` (1-4, as in
    ARCHITECTURE.md), `what`, `count` (`countIsLowerBound` when the read was partial), a `sample` of ad ids,
    `repair` (what `POST /v1/doctor/repair` does) or `notRepairedBecause`. Always 200: the answer is the
    report, broken or not."""
    settings = request.app.state.settings
    ds = settings.doctor
    report = await request.app.state.doctor.report(request.app.state.link, settings,
                                                   ds.settle if settle is None else settle,
                                                   getattr(request.app.state, "redis", None))
    body = report.wire(sample or ds.sample)
    return json_response(body, no_store=True)


@router.post("/repair", status_code=202, summary="Repair what can be repaired safely: starts a job (operator)",
             responses=error_responses(409))
async def repair(request: Request) -> Response:
    """Starts a `repair` job (`202` with its document, `Location: /v1/jobs/{id}`; with `Accept:
    application/x-ndjson`, its progress stream). The job runs a fresh check, then one fenced action per
    problem it can repair; its `counts` say what it did (`republished`, `deadLettered`, `entriesWritten`,
    `messagesRemoved`, `entriesRemoved`, `recordsCreated`, `objectsCreated`, `objectsDeleted`,
    `jobsTakenOver`) and `skippedReasons` what it left and why; `findings` what the check found. While another
    repair job is queued or running, asked through any API node: 409 `repair_running` naming it (`details.jobId`),
    nothing started."""
    await no_body(request)  # takes none: a body is refused, never ignored (gamead_core.api.body)
    request.app.state.link.check_partitions()  # 503 topology_changed: this node's partition map is not the queue's
    jobs: JobService | None = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise JobsNotRunning("operator jobs are not running on this API node")
    started_by = str(getattr(getattr(request.state, "principal", None), "name", None) or "anonymous")
    async with request.app.state.doctor.repairs:  # this node's concurrent requests: one looks and creates at a time
        await refuse_while_repairing(jobs)
        job_id = new_job_id()
        claimed = await claim(jobs, job_id, started_by)  # every node's: compare-and-set in the jobs bucket
        try:
            job = await jobs.create(JobKind.REPAIR, Selection(mode="doctor"), started_by=started_by, job_id=job_id)
        except BaseException:
            await release(jobs, claimed)
            raise
    return job_response(request, job)
