"""Running operator jobs on API nodes: one :class:`JobService` per node.

A job runs on the node that created it, in a background task: a client that disconnects (or a CLI that is
interrupted) never stops it. Its runner holds a **lease** in the job's document (``leaseUntil``, renewed at
every checkpoint, at least every ``jobs.lease / 3`` seconds). Every node sweeps the jobs bucket every
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
from typing import Any, Protocol

from gamead_core.config import GameadSettings
from gamead_core.dlq_ops import DlqOps
from gamead_core.errors import Conflict, GameadError, NotFound, QueueUnavailable, error_text
from gamead_core.ids import new_job_id
from gamead_core.jobs.model import CancelRequest, Job, JobKind, JobPhase, JobState, Mark, Selection
from gamead_core.jobs.policy import failure_rate_exceeded, lease_expired, pace_delay, resume_decision, tally
from gamead_core.jobs.store import JobStore, WorkList
from gamead_core.models import DlqEntry, utcnow
from gamead_core.queue.dlq import DlqFilter
from gamead_core.shutdown import last_write

log = logging.getLogger(__name__)

FLUSH_EVERY = 0.5  #: seconds between two checkpoints of a running job (progress, lease, cancel check)
OBSERVE_EVERY = 1.0  #: seconds between two looks at replayed ads while replaying (stopOnFailureRate)
OBSERVE_BATCH = 200  #: replayed ads looked at per look while replaying
FOLLOW_POLL = 0.5  #: seconds between two passes over unsettled replayed ads while following
FOLLOW_CONCURRENCY = 16  #: record reads in flight while following
STREAM_POLL = 0.25  #: seconds between two reads of a job by a progress stream
STREAM_KEEPALIVE = 5.0  #: a progress stream sends the document at least this often


class RepairActions(Protocol):
    """What a ``repair`` job needs (``gamead_core.doctor.repair.RepairOps``): the actions to take, and taking one."""

    async def plan(self) -> tuple[list[list[Any]], dict[str, int]]:
        """The repair actions for what the doctor finds now, and the count of each kind of problem it found."""
        ...

    async def act(self, item: list[Any], job_id: str) -> str:
        """Take one action (fenced); returns its ``Mark``."""
        ...
class JobAuditHook(Protocol):
    """What the job framework tells the audit trail, for every kind of job (``gamead_core.audit.JobAudit``).

    ``job_started`` runs before the job is stored; if it raises, the job is not created (the audit trail fails
    closed). ``job_ended`` runs once the job has ended (succeeded, failed, cancelled, interrupted); it does its
    own retrying and never raises."""

    async def job_started(self, job: Job) -> None: ...

    async def job_ended(self, job: Job) -> None: ...


class LostLease(Exception):
    """Another node holds this job now (or it finished): this runner stops without writing."""


class CancelRequested(Exception):
    """Someone asked to cancel the job."""


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
        self._sweeper: asyncio.Task[None] | None = None
        self.last_error: str | None = "starting"
        #: the doctor's repair actions on this node, for ``repair`` jobs (set by ``gamead_core.api.routes_doctor``)
        self.repairs: Callable[[], RepairActions] | None = None

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self, open_store: Callable[[], Awaitable[JobStore]]) -> None:
        """Open the jobs bucket (retrying while NATS is away) and sweep for orphaned jobs, in the background."""
        self._sweeper = asyncio.create_task(self._sweep_forever(open_store))

    async def stop(self, timeout: float = 3.0) -> None:
        """Stop sweeping; stop this node's jobs and give their leases back so another node resumes them."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        runs = list(self._runs.values())
        for task in runs:
            task.cancel()
        if runs:
            await asyncio.wait(runs, timeout=timeout)
        if self._sweeper is not None:
            await asyncio.gather(self._sweeper, return_exceptions=True)

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

    def reachable(self) -> bool:
        """Is NATS reachable right now? (The node's DLQ actions refuse while it is away.)"""
        try:
            self._ops()
        except QueueUnavailable:
            return False
        return True

    # --- what the routes call ------------------------------------------------------------------------

    async def create(self, kind: JobKind, selection: Selection, *, started_by: str, rate: float | None = None,
                     stop_on_failure_rate: float | None = None, items: list[Any] | None = None) -> Job:
        """Store a new job (its work list first, if given) and start it here. Returns its document."""
        store = self.store
        job = Job(
            id=new_job_id(), kind=kind, selection=selection, started_by=started_by, created_at=utcnow(),
            rate=rate, stop_on_failure_rate=stop_on_failure_rate, runner=self.node_id,
            lease_until=time.time() + self.lease,
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
        """Ask the job to stop (its runner stops within a checkpoint, ~0.5 s; items done stay done).
        Raises :class:`NotFound`, or :class:`Conflict` if it has already finished."""
        store = self.store
        for _ in range(10):
            job, revision = await store.get(job_id)
            if job.state.terminal:
                raise Conflict(f"job {job_id} has already finished ({job.state.value})")
            if job.cancel_requested is not None:
                return job
            job.cancel_requested = CancelRequest(by=by, at=utcnow())
            try:
                await store.update(job, revision)
            except Conflict:
                continue
            log.info("job cancel requested", extra={"job_id": job_id, "by": by})
            return job
        raise Conflict(f"job {job_id} kept changing; try again")

    async def follow(self, job_id: str) -> AsyncIterator[Job]:
        """The job's document now, then each time it changes (at least every few seconds) until it
        finishes. Raises :class:`NotFound` at once for an unknown job. Stopping the iteration never stops
        the job."""
        job, revision = await self.store.get(job_id)
        yield job
        sent = time.monotonic()
        while not job.state.terminal:
            await asyncio.sleep(STREAM_POLL)
            try:
                job, new_revision = await self.store.get(job_id)
            except QueueUnavailable:
                continue
            except NotFound:
                return
            if new_revision != revision or time.monotonic() - sent >= STREAM_KEEPALIVE:
                revision, sent = new_revision, time.monotonic()
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
        now = time.time()
        for job in await self.store.list(limit=1_000_000):
            if job.id not in self._runs and lease_expired(job, now):
                taken += await self._take_over(job.id)
        return taken

    async def take_over(self, job_id: str) -> bool:
        """Take over job ``job_id`` if its lease expired (resume it here, or end it: :func:`resume_decision`).
        False if it is not expired, runs here already, or another node was faster. What ``gamead doctor
        --repair`` does with a job no sweeper took over."""
        before = await self.store.get(job_id)
        await self._take_over(job_id)
        after = await self.store.get(job_id)
        return after[1] != before[1] and after[0].runner == self.node_id

    async def _take_over(self, job_id: str) -> int:
        store = self.store
        job, revision = await store.get(job_id)
        now = time.time()
        if job.id in self._runs or not lease_expired(job, now):
            return 0
        previous = job.runner
        decision = resume_decision(job, self.settings.jobs.max_resumes)
        job.runner, job.lease_until = self.node_id, now + self.lease
        if decision == JobState.RUNNING:
            job.resumes += 1
            job.state = JobState.RUNNING
        else:
            job.state, job.phase, job.finished_at = decision, JobPhase.DONE, utcnow()
            if decision == JobState.CANCELLED:
                by = job.cancel_requested.by if job.cancel_requested else "?"
                job.stop_reason = f"cancelled by {by} (its runner {previous} had stopped)"
            else:
                job.stop_reason = (f"its runner stopped {job.resumes + 1} times (last {previous}); not resumed "
                                   f"again (jobs.max_resumes = {self.settings.jobs.max_resumes})")
        try:
            revision = await store.update(job, revision)
        except Conflict:
            return 0  # another node was faster
        if decision != JobState.RUNNING:
            log.warning("job ended without its runner", extra={"job_id": job.id, "state": decision.value,
                                                               "previous_runner": previous})
            await self.ended(job)
            return 0
        log.warning("job resumed: its runner's lease expired", extra={
            "job_id": job.id, "previous_runner": previous, "resumes": job.resumes, "phase": job.phase.value})
        self._start(job, revision, None)
        return 1


class JobRun:
    """One job running on this node: select → act → follow → finish, with checkpoints."""

    def __init__(self, service: JobService, job: Job, revision: int, work: WorkList | None) -> None:
        self.service = service
        self.job = job
        self.revision = revision
        self.work = work
        self._last_flush = 0.0
        self._final: tuple[JobState, str | None] = (JobState.SUCCEEDED, None)

    @property
    def ops(self) -> DlqOps:
        return self.service._ops()

    @property
    def repairs(self) -> RepairActions:
        if self.service.repairs is None:
            raise QueueUnavailable("the doctor's repairs are not available on this API node yet")
        return self.service.repairs()

    async def run(self) -> None:
        job = self.job
        try:
            if self.work is None and job.chunks:
                self.work = await self._retrying(lambda: self.service.store.load_work(job.id, job.chunks))
            if job.state == JobState.QUEUED:
                job.state = JobState.RUNNING
            job.started_at = job.started_at or utcnow()
            await self.checkpoint(force=True)
            if job.phase == JobPhase.SELECTING:
                await self._select()
            if job.phase == JobPhase.ACTING:
                await self._act()
            if job.phase == JobPhase.FOLLOWING:
                await self._follow()
            await self._finish(*self._final)
        except LostLease:
            log.warning("job taken over by another node; this runner stops", extra={"job_id": job.id})
        except CancelRequested:
            by = job.cancel_requested.by if job.cancel_requested else "?"
            await self._finish_quietly(JobState.CANCELLED, f"cancelled by {by}")
        except asyncio.CancelledError:
            await asyncio.shield(self._release())
            raise
        except Exception as exc:  # noqa: BLE001 - a job that cannot go on says why, and ends
            log.exception("job failed", extra={"job_id": job.id})
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            await self._finish_quietly(JobState.FAILED, f"error: {message}")

    async def _finish_quietly(self, state: JobState, reason: str) -> None:
        try:
            await self._finish(state, reason)
        except LostLease:
            log.warning("job taken over by another node before it could end", extra={"job_id": self.job.id})
        except Exception:  # noqa: BLE001 - the lease expires and another node resumes the job
            log.exception("job could not record its end", extra={"job_id": self.job.id})

    # --- phases --------------------------------------------------------------------------------------

    async def _select(self) -> None:
        job = self.job
        sel = job.selection
        if job.kind == JobKind.REPAIR:
            items, job.findings = await self._retrying(self._plan_repair)
            self.work = WorkList.new(items)
            job.chunks = len(self.work.bounds)
            job.phase = JobPhase.ACTING
            await self.checkpoint(force=True)
            return
        ops = self.ops
        if sel.mode == "ids":
            assert self.work is not None
            ids = [item[0] for item in self.work.items]
            items, missing = await self._retrying(lambda: ops.resolve_ids(ids, fence=sel.fence))
            sel.not_in_dlq = missing
        else:
            flt = DlqFilter.from_wire(sel.filter or {}) if sel.mode == "filter" else DlqFilter()
            items = await self._retrying(lambda: ops.select(flt, fence=sel.fence, limit=sel.limit or 10_000))
        self.work = WorkList.new([[ad_id, seq] for ad_id, seq in items])
        job.chunks = len(self.work.bounds)
        job.phase = JobPhase.ACTING
        await self.checkpoint(force=True)

    async def _plan_repair(self) -> tuple[list[list[Any]], dict[str, int]]:
        """The doctor's check (up to ``doctor.scan_time``), keeping the job's lease and cancel check going
        meanwhile: a long check must not look like a dead runner to the other nodes."""
        plan = asyncio.ensure_future(self.repairs.plan())
        try:
            while True:
                done, _ = await asyncio.wait({plan}, timeout=FLUSH_EVERY)
                if done:
                    return plan.result()
                await self._retrying(self.checkpoint)
        finally:
            if not plan.done():
                plan.cancel()
                await asyncio.gather(plan, return_exceptions=True)

    async def _act(self) -> None:
        job, work = self.job, self.work
        assert work is not None
        rate = job.rate if job.kind == JobKind.REPLAY else None
        started = time.monotonic()
        actions = 0
        observed = time.monotonic()
        for i in range(work.first_pending(), len(work.items)):
            if work.mark(i) != Mark.PENDING:
                continue
            if rate:
                await self._sleep(pace_delay(started, actions, rate, time.monotonic()))
            mark = await self._retrying(lambda i=i: self._act_one(work.items[i]))
            work.set(i, mark)
            if mark == Mark.ACTED:
                actions += 1
            if job.stop_on_failure_rate is not None and time.monotonic() - observed >= OBSERVE_EVERY:
                observed = time.monotonic()
                await self._retrying(lambda: self._observe(OBSERVE_BATCH))
                counts, _ = tally(job.kind, work.text())
                if failure_rate_exceeded(counts["completed"], counts["deadAgain"], job.stop_on_failure_rate):
                    left = counts["remaining"]
                    self._final = (JobState.FAILED, (
                        f"stopped: {counts['deadAgain']} of {counts['completed'] + counts['deadAgain']} replayed "
                        f"ads that finished died again (over {job.stop_on_failure_rate:.0%}); {left} "
                        f"entr{'y' if left == 1 else 'ies'} left in the DLQ"))
                    break
            await self.checkpoint()
        if job.kind == JobKind.REPLAY:
            job.phase = JobPhase.FOLLOWING
            job.follow_until = time.time() + self.service.settings.jobs.follow_timeout
        else:
            job.phase = JobPhase.DONE
        await self.checkpoint(force=True)

    async def _act_one(self, item: Any) -> str:
        job = self.job
        if job.kind == JobKind.REPAIR:
            try:
                return await self.repairs.act(item, job.id)
            except Conflict:
                return Mark.BUSY
        ops = self.ops
        try:
            if job.kind == JobKind.REPLAY:
                return await ops.replay(item[0], item[1], job.id)
            if job.kind == JobKind.PURGE:
                return await ops.purge(item[0], item[1], job.id)
            return await ops.import_entry(DlqEntry.model_validate(item), job.id)
        except Conflict:
            return Mark.BUSY

    async def _observe(self, limit: int | None) -> None:
        """Look at replayed ads whose outcome is not known yet (oldest first, at most ``limit``)."""
        work = self.work
        assert work is not None
        pending = [i for i in range(len(work.items)) if work.mark(i) == Mark.ACTED][:limit]
        gate = asyncio.Semaphore(FOLLOW_CONCURRENCY)
        job_id = self.job.id

        async def look(i: int) -> None:
            async with gate:
                ad_id, seq = work.items[i]
                work.set(i, await self.ops.outcome(ad_id, seq, job_id))

        for start in range(0, len(pending), 256):
            await asyncio.gather(*(look(i) for i in pending[start:start + 256]))

    async def _follow(self) -> None:
        job, work = self.job, self.work
        assert work is not None
        until = job.follow_until or 0.0
        while Mark.ACTED in work.text():
            await self._retrying(lambda: self._observe(None))
            await self.checkpoint()
            if Mark.ACTED not in work.text() or time.time() >= until:
                break
            await self._sleep(FOLLOW_POLL)
        job.phase = JobPhase.DONE

    async def _finish(self, state: JobState, reason: str | None) -> None:
        job = self.job
        job.state, job.stop_reason, job.finished_at = state, reason, utcnow()
        if job.phase != JobPhase.DONE and state == JobState.SUCCEEDED:
            job.phase = JobPhase.DONE
        await self._retrying(lambda: self.checkpoint(force=True))
        log.info("job finished", extra={"job_id": job.id, "kind": job.kind.value, "state": state.value,
                                        "counts": job.counts, "stop_reason": reason})
        await self.service.ended(job)

    # --- checkpoints ---------------------------------------------------------------------------------

    async def checkpoint(self, *, force: bool = False) -> None:
        """Every ``FLUSH_EVERY`` seconds (or when forced): write the work list's changed chunks and the
        document (counts, lease) by compare-and-set. Raises :class:`LostLease` if another node holds the
        job, :class:`CancelRequested` if a cancel was asked for (unless the job is finishing)."""
        if not force and time.monotonic() - self._last_flush < FLUSH_EVERY:
            return
        job, store = self.job, self.service.store
        if self.work is not None:
            await store.save_work(job.id, self.work)
            job.counts, job.skipped_reasons = tally(job.kind, self.work.text())
        job.runner, job.lease_until = self.service.node_id, time.time() + self.service.lease
        for _ in range(10):
            try:
                self.revision = await store.update(job, self.revision)
                break
            except Conflict:
                current, self.revision = await store.get(job.id)
                if current.runner != self.service.node_id or current.state.terminal:
                    raise LostLease(job.id) from None
                job.cancel_requested = current.cancel_requested
        else:
            raise LostLease(job.id)
        self._last_flush = time.monotonic()
        if job.cancel_requested is not None and not job.state.terminal:
            raise CancelRequested(job.id)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, keeping checkpoints (lease, cancel) going during long waits."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, FLUSH_EVERY))
            await self._retrying(self.checkpoint)

    async def _retrying(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``call``; while NATS is unavailable, wait and try again (the job is not lost to an outage;
        if it lasts longer than a lease, another node may take the job over: then the checkpoint says so)."""
        warned = False
        while True:
            try:
                return await call()
            except QueueUnavailable as exc:
                if not warned:
                    log.warning("job waits for NATS: %s", exc.message, extra={"job_id": self.job.id})
                    warned = True
                await asyncio.sleep(1.0)

    async def _release(self) -> None:
        """On shutdown: save the work list, give the lease back so another node resumes the job at once."""
        job, store = self.job, self.service.store
        job.lease_until = 0.0

        async def release() -> None:
            if self.work is not None:
                await store.save_work(job.id, self.work)
                job.counts, job.skipped_reasons = tally(job.kind, self.work.text())
            await store.update(job, self.revision)

        try:
            await last_write(release, timeout=2.0, connected=self.service.reachable())
            log.info("job handed back for another node to resume", extra={"job_id": job.id})
        except Exception:  # noqa: BLE001 - the lease then simply expires (another node resumes it then)
            log.info("job not handed back (NATS away or slow): another node resumes it when its lease expires",
                     extra={"job_id": job.id})
