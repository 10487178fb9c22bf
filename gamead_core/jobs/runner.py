"""Running operator jobs on API nodes: one :class:`JobService` per node (each job's run:
:mod:`gamead_core.jobs.run`).

A job runs on the node that created it, in a background task: a client that disconnects (or a CLI that is
interrupted) never stops it. Its runner holds a **lease** in the job's document (``leaseUntil``, renewed at
every checkpoint, at least every ``jobs.lease / 3`` seconds, and its ``leaseTtl``, the runner's ``jobs.lease``,
as the leader leases carry theirs: what a reader's silence window and the doctor's stuck check judge it by, the
one rule of :mod:`gamead_core.scaling.lease_rule`). Every node sweeps the jobs bucket every
``jobs.lease / 3`` seconds; a job whose lease expired (its runner died, or lost NATS for longer than a lease)
is **resumed** by the first node whose compare-and-set on the document wins: it loads the work list and goes
on from the first item without a mark. Items acted on after the dead runner's last checkpoint are looked at
again; the fences of :mod:`gamead_core.dlq_ops` make that safe (the record names the job and the entry, so the
item is recognised as this job's own and finished, never done twice). A job is resumed at most
``jobs.max_resumes`` times, then ``interrupted``. A node that shuts down gracefully gives its leases back at
once, so another node resumes its jobs within one sweep.

A runner that lost its lease (it was paused longer than ``jobs.lease`` and another node took over) finds out at
its next checkpoint (the compare-and-set on the document fails) and stops; anything it did meanwhile was
fenced too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from gamead_core import clock
from gamead_core.clock_offset import sampled
from gamead_core.config import GameadSettings
from gamead_core.count_words import counted
from gamead_core.dlq_ops import DlqOps
from gamead_core.errors import Conflict, GameadError, NotFound, QueueUnavailable, error_text
from gamead_core.ids import new_job_id
from gamead_core.jobs.busy import JobsBusy
from gamead_core.jobs.hooks import JobAuditHook, RepairActions
from gamead_core.jobs.model import CancelRequest, Job, JobKind, JobPhase, JobState, Selection
from gamead_core.jobs.policy import (cancelled_end, lease_expired, lease_key, lease_too_far, lease_window,
                                     resume_decision, tally, written_ttl)
from gamead_core.jobs.run import JobRun
from gamead_core.jobs.store import JobStore, WorkList
from gamead_core.models import utcnow
from gamead_core.single_flight import SingleFlight
from gamead_core.stop_bound import ended

log = logging.getLogger(__name__)

STREAM_POLL = 0.25  #: seconds between two reads of a job by a progress stream
STREAM_KEEPALIVE = 5.0  #: a progress stream sends the document at least this often


class JobService:
    """Creates, runs, resumes, cancels and reports the operator jobs of one API node."""

    def __init__(self, settings: GameadSettings, node_id: str, ops: Callable[[], DlqOps],
                 audit: JobAuditHook | None = None) -> None:
        self.settings = settings
        self.node_id = node_id
        self._ops = ops  #: the node's DLQ actions (raises QueueUnavailable while NATS is away)
        self.audit = audit  #: told when a job starts and ends
        self._store: JobStore | None = None
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._starting = 0  #: jobs being created here that hold a place under jobs.max_running (not in _runs yet)
        self._sweeper: asyncio.Task[None] | None = None
        self.last_error: str | None = "starting"
        #: job id → its lease as last seen (:func:`lease_key`), since when (monotonic s) and its written ttl then
        #: (:func:`written_ttl`, s): a lease unchanged for longer than :func:`lease_window` is expired, whatever its
        #: leaseUntil (attack31b F2b, review31 R4)
        self._seen: dict[str, tuple[tuple[str | None, float], float, float]] = {}
        #: the doctor's repair actions on this node, for ``repair`` jobs (set by ``gamead_core.api.routes_doctor``)
        self.repairs: Callable[[], RepairActions] | None = None
        #: the progress streams' reads of a job, one per STREAM_POLL however many follow it (attack47 F5)
        self._polls: SingleFlight[str, tuple[Job, int]] = SingleFlight(keep=STREAM_POLL)

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self, open_store: Callable[[], Awaitable[JobStore]]) -> None:
        """Open the jobs bucket (retrying while NATS is away) and sweep for orphaned jobs, in the background."""
        self._sweeper = asyncio.create_task(self._sweep_forever(open_store))

    async def stop(self, timeout: float = 3.0) -> None:
        """Stop sweeping; stop this node's jobs and give their leases back so another node resumes them."""
        sweeper = [self._sweeper] if self._sweeper is not None else []
        for task in sweeper:
            task.cancel()
        runs = list(self._runs.values())
        for task in runs:
            task.cancel()  # once: each gives its lease back, shielded (a second cancel would not wait for it)
        if runs:
            await asyncio.wait(runs, timeout=timeout)
        # cancelled again until it ends: a sweep's NATS await may take the cancel (hang50, stop_bound.ended)
        await ended(sweeper, timeout, "the jobs' sweeper")

    @property
    def store(self) -> JobStore:
        if self._store is None:
            raise QueueUnavailable(f"operator jobs are unavailable: {self.last_error or 'starting'}")
        return self._store

    @property
    def lease(self) -> float:
        return self.settings.jobs.lease

    def running_here(self) -> list[str]:
        return list(self._runs)

    def busy(self) -> int:
        """Jobs that hold a place under ``jobs.max_running`` on this node: running, and being created."""
        return len(self._runs) + self._starting

    def room(self) -> None:
        """Raise :class:`JobsBusy` (503 ``jobs_busy``) if this node already runs ``jobs.max_running`` jobs: what a
        route asks before it does any work for a new job (the fence, a count), and :meth:`create` again."""
        limit = self.settings.jobs.max_running
        if self.busy() >= limit:
            raise JobsBusy(f"this API node already runs {counted(limit, 'operator job')} "
                           "(jobs.max_running): no job was started; "
                           "try again when one has ended (gamead dlq jobs lists them)",
                           details={"running": self.busy(), "limit": limit, "setting": "jobs.max_running"})

    def reachable(self) -> bool:
        """Is NATS reachable right now? (The node's DLQ actions refuse while it is away.)"""
        try:
            self._ops()
        except QueueUnavailable:
            return False
        return True

    # --- what the routes call ------------------------------------------------------------------------

    async def create(self, kind: JobKind, selection: Selection, *, started_by: str, rate: float | None = None,
                     stop_on_failure_rate: float | None = None, items: list[Any] | None = None,
                     job_id: str | None = None) -> Job:
        """Store a new job (id ``job_id``, a new one by default; its work list first, if given) and start it
        here. Returns its document. Raises :class:`JobsBusy` before anything is stored when this node runs
        ``jobs.max_running`` jobs already (every kind: replay, purge, import, repair; attack34a F2)."""
        store = self.store
        self.room()
        self._starting += 1  # held from here, before the first await: N concurrent creates never pass the bound
        try:
            return await self._create(store, kind, selection, started_by=started_by, rate=rate,
                                      stop_on_failure_rate=stop_on_failure_rate, items=items, job_id=job_id)
        finally:
            self._starting -= 1

    async def _create(self, store: JobStore, kind: JobKind, selection: Selection, *, started_by: str,
                      rate: float | None, stop_on_failure_rate: float | None, items: list[Any] | None,
                      job_id: str | None) -> Job:
        job = Job(
            id=job_id or new_job_id(), kind=kind, selection=selection, started_by=started_by, created_at=utcnow(),
            rate=rate, stop_on_failure_rate=stop_on_failure_rate, runner=self.node_id,
            lease_until=clock.now() + self.lease, lease_ttl=self.lease,
            phase=JobPhase.ACTING if selection.mode == "entries" else JobPhase.SELECTING,
        )
        work: WorkList | None = None
        if items is not None:
            work = WorkList.new(items)
            job.chunks = len(work.bounds)
            job.counts, job.skipped_reasons = tally(kind, work.text())
        if self.audit is not None:
            await self.audit.job_started(job)  # no record, no job
        if work is not None:
            await store.save_work(job.id, work)
        revision = await store.create(job)
        log.info("job created", extra={"job_id": job.id, "kind": kind.value, "started_by": started_by,
                                       "selection": selection.model_dump(mode="json", by_alias=True)})
        self._start(job, revision, work)
        return job

    async def ended(self, job: Job) -> None:
        """Tell the audit hook that ``job`` has ended (never raises)."""
        if self.audit is not None:
            try:
                await self.audit.job_ended(job)
            except Exception:  # noqa: BLE001 - the job's own document still says how it ended
                log.exception("could not record the end of a job", extra={"job_id": job.id})

    async def get(self, job_id: str) -> Job:
        return (await self.store.get(job_id))[0]

    async def list(self, *, kind: JobKind | None = None, state: JobState | None = None, limit: int = 50) -> list[Job]:
        return await self.store.list(kind=kind, state=state, limit=limit)

    async def cancel(self, job_id: str, by: str) -> Job:
        """Ask the job to stop (its runner stops within a checkpoint, ~0.5 s; items done stay done). A job with no
        live runner (:meth:`runner_silent`: nobody would act on the request until its lease passed, an hour for
        one written an hour ahead, attack31b F2b) is ended here at once, ``cancelled``; the document returned says
        which. Raises :class:`NotFound`, or :class:`Conflict` if it has already finished."""
        store = self.store
        for _ in range(10):
            job, revision = await store.get(job_id)
            if job.state.terminal:
                raise Conflict(f"job {job_id} has already finished ({job.state.value})")
            if job.cancel_requested is None:
                job.cancel_requested = CancelRequest(by=by, at=utcnow())
                try:
                    revision = await store.update(job, revision)
                except Conflict:
                    continue
                log.info("job cancel requested", extra={"job_id": job_id, "by": by})
            if self.runner_silent(job):  # nobody would act on it: end it here
                await self._take_over(job.id, stuck_at=revision)
                return (await store.get(job_id))[0]
            return job
        raise Conflict(f"job {job_id} kept changing; try again")

    async def follow(self, job_id: str, first: Job | None = None) -> AsyncIterator[Job]:
        """The job's document now (``first``, when the caller has just read it: then nothing here raises), then
        each time it changes, and at least every :data:`STREAM_KEEPALIVE` s (the last one read while NATS is away),
        until it finishes; a job gone meanwhile ends it. Without
        ``first``, raises :class:`NotFound` at once for an unknown job. Stopping the iteration never stops
        the job."""
        job, revision = (first, None) if first is not None else await self.store.get(job_id)
        yield job
        sent = time.monotonic()
        while not job.state.terminal:
            await asyncio.sleep(STREAM_POLL)
            try:
                # one read per STREAM_POLL, shared with the node's other followers
                latest, new_revision = await self._polls.run(job_id, lambda: self.store.get(job_id))
            except QueueUnavailable:  # NATS away: the last document, still sent every STREAM_KEEPALIVE s, so a
                latest, new_revision = job, revision  # follower's bound on silence (attack56 F2) never cuts a live API
            except NotFound:
                return
            changed = latest != job if revision is None else new_revision != revision
            job, revision = latest, new_revision
            if changed or time.monotonic() - sent >= STREAM_KEEPALIVE:
                sent = time.monotonic()
                yield job

    # --- running and resuming ------------------------------------------------------------------------

    def _start(self, job: Job, revision: int, work: WorkList | None) -> None:
        run = JobRun(self, job, revision, work)
        task = asyncio.create_task(run.run(), name=f"job {job.id}")
        self._runs[job.id] = task
        task.add_done_callback(lambda _t, job_id=job.id: self._runs.pop(job_id, None))

    async def _sweep_forever(self, open_store: Callable[[], Awaitable[JobStore]]) -> None:
        while self._store is None:
            try:
                self._store = await open_store()
                self.last_error = None
            except (GameadError, OSError) as exc:
                self.last_error = error_text(exc)
                await asyncio.sleep(1.0)
        interval = min(5.0, max(0.2, self.lease / 3))
        # leases are judged on nats-server's clock: not before this node sampled it (its first heartbeat), or a
        # host 1 min ahead takes a live runner's job at its start (attack33a F5); without one, on the host's
        await sampled(within=2 * self.settings.registry.heartbeat_interval + self.settings.nats.request_timeout)
        while True:
            try:
                await self.sweep()
            except GameadError as exc:
                log.debug("job sweep failed: %s", exc.message)
                try:  # the bucket may have been deleted: open (and so recreate) it again
                    self._store = await asyncio.wait_for(open_store(), interval)
                except (GameadError, OSError, asyncio.TimeoutError):
                    pass
            except Exception:  # noqa: BLE001 - the sweeper must outlive any one bad document
                log.exception("job sweep failed")
            await asyncio.sleep(interval)

    async def sweep(self) -> int:
        """Take over every unfinished job whose lease expired; returns how many this node took."""
        taken = 0
        now = clock.now()
        jobs = [j for j in await self.store.list(limit=1_000_000) if not j.state.terminal]
        self._seen = {j.id: self._seen[j.id] if self._seen.get(j.id, (None,))[0] == lease_key(j)
                      else (lease_key(j), time.monotonic(), written_ttl(j, now)) for j in jobs}
        for job in jobs:
            if job.id not in self._runs and self._silent(job, now):
                taken += await self._take_over(job.id)
        return taken

    def _silent(self, job: Job, now: float) -> bool:
        """:func:`lease_expired` at ``now`` (epoch s), its silence as this node saw it: the seconds it has seen
        ``job``'s lease unchanged (0 when it was not seen so) against :func:`lease_window`."""
        key, since, written = self._seen.get(job.id, (None, 0.0, 0.0))
        seen = key == lease_key(job)
        return lease_expired(job, now, unchanged_for=time.monotonic() - since if seen else 0.0,
                             lease=lease_window(written, self.lease))

    def runner_silent(self, job: Job) -> bool:
        """True if ``job`` (unfinished) has no live runner as this node sees it: its lease expired, lies further
        ahead than a runner writes it (:func:`lease_too_far`), or stood unchanged for longer than :func:`lease_window`;
        or its runner is this node, which does not run it."""
        now = clock.now()
        return not job.state.terminal and job.id not in self._runs and (
            job.runner == self.node_id or lease_too_far(job, now, self.lease)
            or self._silent(job, now))

    async def take_over(self, job_id: str, stuck_at: int | None = None) -> bool:
        """Take over job ``job_id`` if its lease expired (resume it here, or end it: :func:`resume_decision`), or,
        with ``stuck_at``, if it still has that revision (the doctor found its runner gone or its lease too far
        ahead, and read it twice). False if it is not expired, runs here already, or another node was faster. What
        ``gamead doctor --repair`` does with a job no sweeper took over."""
        before = await self.store.get(job_id)
        await self._take_over(job_id, stuck_at)
        after = await self.store.get(job_id)
        return after[1] != before[1] and after[0].runner == self.node_id

    async def _take_over(self, job_id: str, stuck_at: int | None = None) -> int:
        store = self.store
        job, revision = await store.get(job_id)
        now = clock.now()
        stuck = stuck_at is not None and stuck_at == revision and not job.state.terminal
        if job.id in self._runs or not (stuck or self._silent(job, now)):
            return 0
        previous = job.runner
        decision = resume_decision(job, self.settings.jobs.max_resumes)
        if decision == JobState.RUNNING and self.busy() >= self.settings.jobs.max_running:
            log.debug("job %s not resumed here: this node runs jobs.max_running jobs", job.id)
            return 0  # another node, or this one once a job ends, resumes it (its lease stays expired)
        job.runner, job.lease_until, job.lease_ttl = self.node_id, now + self.lease, self.lease
        if decision == JobState.RUNNING:
            job.resumes += 1
            job.state = JobState.RUNNING
        else:
            job.state, job.phase, job.finished_at = decision, JobPhase.DONE, utcnow()
            if decision == JobState.CANCELLED and job.cancel_requested is not None:
                job.state, job.stop_reason = cancelled_end(job.counts, job.cancel_requested.by, (
                    JobState.SUCCEEDED, None), f" (its runner {previous} had stopped)")
            else:
                job.stop_reason = (f"its runner stopped {job.resumes + 1} times (last {previous}); not resumed "
                                   f"again (jobs.max_resumes = {self.settings.jobs.max_resumes})")
        held = decision == JobState.RUNNING
        self._starting += held  # its place under jobs.max_running, held across the write as create() does
        try:
            revision = await store.update(job, revision)
        except Conflict:
            return 0  # another node was faster
        finally:
            self._starting -= held
        if decision != JobState.RUNNING:
            log.warning("job ended without its runner", extra={"job_id": job.id, "state": decision.value,
                                                               "previous_runner": previous})
            await self.ended(job)
            return 0
        log.warning("job resumed: its runner's lease expired", extra={
            "job_id": job.id, "previous_runner": previous, "resumes": job.resumes, "phase": job.phase.value})
        if self.audit is not None:  # who runs it now, and after whom: gamead audit --job (left40)
            await self.audit.job_taken_over(job, previous)
        self._start(job, revision, None)
        return 1
