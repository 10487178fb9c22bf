"""One doctor repair at a time, on every API node at once.

words58 made a repair asked for while another repair job is queued or running a 409 ``repair_running``; each node
looked for one and created its job under a lock of its own, so two asks through two nodes at once both found none
and each started a repair job acting on the same findings (attack59: 4 of 6 runs of
``test_concurrent_repairs_through_two_api_nodes_start_one_job_at_a_time``). Now a repair is also **claimed** in the
jobs bucket (key :data:`~gamead_core.names.REPAIR_CLAIM_KEY`: the job's id, who asked, when), compare-and-set on
the key's revision, before its job is created: of two nodes that read the same claim, one's write wins, the other
reads again and is refused naming the winner. A claim whose job has ended, or whose runner is silent (dead: its
job resumed by a node's sweep), or that names a job never stored within :data:`UNBORN` seconds (its node died
between the claim and the job), is taken over the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import orjson

from gamead_core import clock, names
from gamead_core.api.errors import RepairRunning
from gamead_core.errors import Conflict, NotFound
from gamead_core.jobs.model import Job, JobKind, JobState
from gamead_core.jobs.runner import JobService
from gamead_core.jobs.store import JobStore

UNBORN = 30.0  #: seconds a claim naming a job not stored yet still holds (the job is being created)
TRIES = 5  #: claims lost in a row before the ask is refused 409 ``conflict`` (each loss: another node claimed)


def running(job: Job) -> RepairRunning:
    """The 409 ``repair_running`` naming ``job``, the repair job that is queued or running."""
    return _refusal(job.id, job.state.value, job.started_by, job.created_at)


def _refusal(job_id: str, state: str, started_by: Any, when: datetime) -> RepairRunning:
    """The 409 ``repair_running`` naming the repair job ``job_id``, ``state`` (queued, running, or starting: claimed,
    not stored yet), who started it and when."""
    return RepairRunning(f"repair job {job_id} is already {state} (started by {started_by} at "
                         f"{when:%Y-%m-%d %H:%M:%S} UTC): one repair at a time; follow it: GET /v1/jobs/{job_id}",
                         details={"jobId": job_id, "startedBy": started_by, "createdAt": when.isoformat()})


async def refuse_while_repairing(jobs: JobService) -> None:
    """Raise :func:`running` while a repair job is queued or running on any node, its runner not silent
    (:meth:`JobService.runner_silent`). Reads the jobs bucket: catches a job a node started without a claim."""
    for state in (JobState.RUNNING, JobState.QUEUED):
        for job in await jobs.list(kind=JobKind.REPAIR, state=state, limit=100):
            if not jobs.runner_silent(job):
                raise running(job)


async def claim(jobs: JobService, job_id: str, started_by: str) -> int:
    """Claim the one repair for job ``job_id`` (not stored yet); its claim's revision (for :func:`release`).
    Raises :class:`RepairRunning` naming the repair that holds it, :class:`Conflict` (409) after :data:`TRIES`
    claims lost in a row, QueueUnavailable or JobsFull as the bucket's reads and writes."""
    store = jobs.store
    value = orjson.dumps({"jobId": job_id, "startedBy": started_by, "claimedAt": clock.now()})
    for _ in range(TRIES):
        held = await store.read_key(names.REPAIR_CLAIM_KEY)
        if held is not None and _holder(held[0]).get("jobId") == job_id:  # a write of ours still in flight landed
            return held[1]
        if held is not None:
            await _refuse_if_held(store, _holder(held[0]), lambda job: not jobs.runner_silent(job))
        revision = await store.swap_key(names.REPAIR_CLAIM_KEY, value, None if held is None else held[1])
        if revision is not None:
            return revision
    raise Conflict(f"the doctor's repair claim changed {TRIES} times while this node claimed it: ask again")


async def release(jobs: JobService, revision: int) -> None:
    """Let go of a claim (revision ``revision``) whose job was not created. Never raises: an unreleased claim
    holds :data:`UNBORN` seconds."""
    try:
        await jobs.store.drop_key(names.REPAIR_CLAIM_KEY, revision)
    except Exception:  # noqa: BLE001 - its job does not exist: the claim lapses by itself
        pass


def _holder(value: bytes) -> dict[str, Any]:
    try:
        held = orjson.loads(value)
    except orjson.JSONDecodeError:
        return {}
    return held if isinstance(held, dict) else {}


async def _refuse_if_held(store: JobStore, held: dict[str, Any], live: Callable[[Job], bool]) -> None:
    """Raise :class:`RepairRunning` if the claim ``held`` still holds: its job queued or running with a live
    runner, or not stored yet and claimed less than :data:`UNBORN` seconds ago."""
    job_id, at = held.get("jobId"), held.get("claimedAt")
    if not isinstance(job_id, str):
        return
    try:
        job, _revision = await store.get(job_id)
    except NotFound:
        if isinstance(at, (int, float)) and clock.now() - at < UNBORN:
            raise _refusal(job_id, "starting", held.get("startedBy"),
                           datetime.fromtimestamp(at, timezone.utc)) from None
        return
    if not job.state.terminal and live(job):
        raise running(job)
