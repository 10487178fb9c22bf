"""One operator job running on this node (:class:`JobRun`): select → act → follow → finish, with checkpoints.

A run renews its lease in the job's document at every checkpoint (at least every ``jobs.lease / 3`` seconds) and
stops when a compare-and-set on the document fails (another node took the job over: :class:`LostLease`) or a
cancel is asked for (:class:`CancelRequested`). The pure decisions (pace, the failure-rate stop, tallies) are in
:mod:`gamead_core.jobs.policy`; the node-level service that starts, resumes and cancels runs is
:class:`gamead_core.jobs.runner.JobService`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gamead_core import clock
from gamead_core.dlq_ops import DlqOps
from gamead_core.errors import Conflict, GameadError, QueueUnavailable, error_text
from gamead_core.jobs.hooks import RepairActions
from gamead_core.jobs.model import Job, JobKind, JobPhase, JobState, Mark
from gamead_core.jobs.policy import cancelled_end, failure_rate_exceeded, failure_reason, pace_delay, tally
from gamead_core.jobs.store import WorkList
from gamead_core.models import STORED, DlqEntry, utcnow
from gamead_core.queue.dlq import DlqFilter
from gamead_core.shutdown import last_write
from gamead_core.stop_bound import ended

if TYPE_CHECKING:
    from gamead_core.jobs.runner import JobService

log = logging.getLogger(__name__)

FLUSH_EVERY = 0.5  #: seconds between two checkpoints of a running job (progress, lease, cancel check)
OBSERVE_EVERY = 1.0  #: seconds between two looks at replayed ads while replaying (live counts, stopOnFailureRate)
OBSERVE_BATCH = 200  #: replayed ads looked at per look while replaying (record reads; the cost is bounded by this)
FOLLOW_POLL = 0.5  #: seconds between two passes over unsettled replayed ads while following
FOLLOW_CONCURRENCY = 16  #: record reads in flight while following
LAST_LOOK_ADS = 1024  #: replayed ads a cancelled job looks at once more before it ends
LAST_LOOK_SECONDS = 3.0  #: how long that last look may take


class LostLease(Exception):
    """Another node holds this job now (or it finished): this runner stops without writing."""


class CancelRequested(Exception):
    """Someone asked to cancel the job."""


class JobRun:
    """One job running on this node: select → act → follow → finish, with checkpoints."""

    def __init__(self, service: JobService, job: Job, revision: int, work: WorkList | None) -> None:
        self.service = service
        self.job = job
        self.revision = revision
        self.work = work
        self._last_flush = 0.0
        self._observed = 0.0  #: monotonic seconds of the last look at replayed ads while acting
        self._cursor = 0  #: where the next look at replayed ads starts in the work list (it goes round)
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
            job.state = JobState.RUNNING if job.state == JobState.QUEUED else job.state
            job.started_at = job.started_at or utcnow()
            await self._retrying(lambda: self.checkpoint(force=True))
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
            await self._last_look()  # its work all done meanwhile: the job ends as it would have (cancelled_end)
            counts = tally(job.kind, self.work.text())[0] if self.work is not None else {}
            await self._finish_quietly(*cancelled_end(counts, job.cancel_requested.by, self._final))
        except asyncio.CancelledError:
            await asyncio.shield(self._release())
            raise
        except Exception as exc:  # noqa: BLE001 - a job that cannot go on says why, and ends
            reason = failure_reason(job.phase, exc)
            expected = isinstance(exc, GameadError)  # NATS, a store: one line, no traceback (attack34a F2)
            log.log(logging.WARNING if expected else logging.ERROR, "job failed: %s", reason, exc_info=not expected,
                    extra={"job_id": job.id, "kind": job.kind.value, "phase": job.phase.value})
            await self._finish_quietly(JobState.FAILED, reason)

    async def _finish_quietly(self, state: JobState, reason: str) -> None:
        try:
            await self._finish(state, reason)
        except LostLease:
            log.warning("job taken over by another node before it could end", extra={"job_id": self.job.id})
        except GameadError as exc:  # expected (NATS away, a full bucket): one line; the lease expires and another
            log.warning("job could not record its end: %s", error_text(exc),  # node resumes the job
                        extra={"job_id": self.job.id, "error_code": exc.code})
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
            await self._retrying(lambda: self.checkpoint(force=True))
            return
        ops = self.ops
        if sel.mode == "ids":
            assert self.work is not None
            ids = [item[0] for item in self.work.items]
            items, missing = await self._retrying(lambda: ops.resolve_ids(ids, fence=sel.fence))
            sel.not_in_dlq = len(missing)
        else:
            flt = DlqFilter.from_wire(sel.filter or {}) if sel.mode == "filter" else DlqFilter()
            most = sel.limit or 10_000  # one entry past it is read: a selection it cut says so (pastLimit)
            items = await self._retrying(lambda: ops.select(flt, fence=sel.fence, limit=most + 1))
            sel.past_limit, items = len(items) > most, items[:most]
        self.work = WorkList.new([[ad_id, seq] for ad_id, seq in items])
        job.chunks = len(self.work.bounds)
        job.phase = JobPhase.ACTING
        await self._retrying(lambda: self.checkpoint(force=True))

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
            await ended([plan], 2.0, "the job's selection")  # cancelled again until it ends (hang50), bounded

    async def _act(self) -> None:
        job, work = self.job, self.work
        assert work is not None
        rate = job.rate if job.kind == JobKind.REPLAY else None
        started = time.monotonic()
        actions = 0
        judged = self._observed = time.monotonic()
        for i in range(work.first_pending(), len(work.items)):
            if work.mark(i) != Mark.PENDING:
                continue
            if rate:
                await self._sleep(pace_delay(started, actions, rate, time.monotonic()))
            mark = await self._retrying(lambda i=i: self._act_one(work.items[i]))
            work.set(i, mark)
            if mark == Mark.ACTED:
                actions += 1
            await self._look_while_acting()
            if job.stop_on_failure_rate is not None and self._observed > judged:
                judged = self._observed
                counts, _ = tally(job.kind, work.text())
                if failure_rate_exceeded(counts["completed"], counts["deadAgain"], job.stop_on_failure_rate):
                    left = counts["remaining"]
                    self._final = (JobState.FAILED, (
                        f"stopped: {counts['deadAgain']} of {counts['completed'] + counts['deadAgain']} replayed "
                        f"ads that finished died again (over {job.stop_on_failure_rate:.0%}); {left} "
                        f"entr{'y' if left == 1 else 'ies'} left in the DLQ"))
                    break
            await self._retrying(self.checkpoint)
        if job.kind == JobKind.REPLAY:
            job.phase = JobPhase.FOLLOWING
            job.follow_until = clock.now() + self.service.settings.jobs.follow_timeout
        else:
            job.phase = JobPhase.DONE
        await self._retrying(lambda: self.checkpoint(force=True))

    async def _act_one(self, item: Any) -> str:
        job = self.job
        if job.kind == JobKind.REPAIR:
            try:
                return await self.repairs.act(item, job.id, self._wait)
            except Conflict:
                return Mark.BUSY
            finally:
                job.waiting = None
        ops = self.ops
        try:
            if job.kind == JobKind.REPLAY:
                return await ops.replay(item[0], item[1], job.id)
            if job.kind == JobKind.PURGE:
                return await ops.purge(item[0], item[1], job.id)
            return await ops.import_entry(DlqEntry.model_validate(item, context=STORED), job.id)  # checked when asked
        except Conflict:
            return Mark.BUSY

    async def _look_while_acting(self) -> None:
        """While a replay acts, every :data:`OBSERVE_EVERY` s: look at up to :data:`OBSERVE_BATCH` replayed ads
        not known to have finished (going round), so the live counts say what they became as it happens
        (ops13: "dead again 0 · still running 72" with ads dead again). At most OBSERVE_BATCH reads a second."""
        if self.job.kind != JobKind.REPLAY or self.job.phase != JobPhase.ACTING or self.work is None:
            return
        if time.monotonic() - self._observed < OBSERVE_EVERY:
            return
        self._observed = time.monotonic()
        self._cursor = await self._retrying(lambda: self._observe(OBSERVE_BATCH, self._cursor))

    async def _observe(self, limit: int | None, start: int = 0) -> int:
        """Look at replayed ads whose outcome is not known yet: at most ``limit`` (all if ``None``), from work
        item ``start`` on, going round to the first. Returns where the next look should start."""
        work = self.work
        assert work is not None
        pending = work.find(Mark.ACTED, start, len(work.items) if limit is None else limit)
        gate = asyncio.Semaphore(FOLLOW_CONCURRENCY)
        job_id = self.job.id

        async def look(i: int) -> None:
            async with gate:
                ad_id, seq = work.items[i]
                work.set(i, await self.ops.outcome(ad_id, seq, job_id))

        for at in range(0, len(pending), 256):
            await asyncio.gather(*(look(i) for i in pending[at:at + 256]))
        return pending[-1] + 1 if pending else 0

    async def _last_look(self) -> None:
        """A cancelled replay looks once more at the ads it replayed (at most :data:`LAST_LOOK_ADS`, for up to
        :data:`LAST_LOOK_SECONDS`), so its counts say how far they got rather than what they were at the last
        checkpoint. Nothing follows them after that: the summary calls the rest "not finished when the job
        ended", never "still running" (a reviewer saw "still running 14" for ads dead 26 minutes earlier)."""
        if self.job.kind != JobKind.REPLAY or self.work is None:
            return
        try:
            await asyncio.wait_for(self._observe(LAST_LOOK_ADS), LAST_LOOK_SECONDS)
        except (asyncio.TimeoutError, GameadError) as exc:
            log.info("cancelled job's last look at its replayed ads cut short: %s", error_text(exc) or "timeout",
                     extra={"job_id": self.job.id})

    async def _follow(self) -> None:
        job, work = self.job, self.work
        assert work is not None
        until = job.follow_until or 0.0
        while Mark.ACTED in work.text():
            await self._retrying(lambda: self._observe(None))
            await self._retrying(self.checkpoint)
            if Mark.ACTED not in work.text() or clock.now() >= until:
                break
            await self._sleep(FOLLOW_POLL)
        job.phase = JobPhase.DONE

    async def _finish(self, state: JobState, reason: str | None) -> None:
        job = self.job
        job.state, job.stop_reason, job.finished_at = state, reason, utcnow()
        job.phase = JobPhase.DONE  # ended, however: a cancelled or failed job's phase says so too (attack28b M2)
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
        lease = self.service.lease  # leaseTtl too: a reader waits for it, not its own jobs.lease (fix32)
        job.runner, job.lease_until, job.lease_ttl = self.service.node_id, clock.now() + lease, lease
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

    async def _wait(self, seconds: float, what: str) -> None:
        """An action's wait: ``what`` it waits for in the document (``waiting``, written at once: the progress says
        it, not a silent wait, fix33a), the checkpoints (lease, cancel) kept going meanwhile."""
        if what != self.job.waiting:
            self.job.waiting = what
            await self._retrying(lambda: self.checkpoint(force=True))
        await self._sleep(seconds)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, keeping checkpoints (lease, cancel) going during long waits."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, FLUSH_EVERY))
            await self._look_while_acting()  # a slow rate's long pauses keep the live counts true too
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
