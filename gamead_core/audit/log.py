"""The audit trail in JetStream: stream ``GAMEAD_AUDIT`` (one subject per action, limits retention), written by
:meth:`AuditLog.write` and read newest first by :meth:`AuditLog.page`.

**Fail closed.** An action's ``accepted`` record is written *before* the action is done (a job is created, an
override set, a cancel asked for); when it cannot be written the action is not done and the client gets 503
``audit_unavailable`` (:class:`~gamead_core.errors.AuditUnavailable`). What happens *after* an accepted action
(a job's end, a refusal, a failure) is recorded as well as it can be: a job's end is retried while NATS is away
(for up to :data:`END_RETRY_SECONDS`), and the job's own document (``GET /v1/jobs/{id}``, kept
``jobs.retention``) stays the source of truth for its counts.

**Retention.** Limits retention with ``discard: old``: a record lives ``audit.max_age`` and the stream keeps at
most ``audit.max_msgs`` records and ``audit.max_bytes`` bytes, dropping the oldest first. The trail never
refuses a record for being full (that would stop every operator action); a flood of refusals cannot push it out
either, because refusals are throttled per caller (:class:`~gamead_core.audit.model.RefusalThrottle`) and
unauthenticated requests (401) are not recorded at all (they are logged).

**Reading** is bounded like the DLQ's: a page reads the stream backwards in windows, at most ``audit.scan_limit``
records a request, and says ``complete: false`` with a ``nextCursor`` when it stopped early; a ``since`` filter
stops the scan once records are older than it (allowing for clock skew between API nodes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats.errors
import orjson
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from pydantic import ValidationError

from gamead_core import names
from gamead_core.audit.context import ActionContext, current
from gamead_core.audit.model import AuditFilter, AuditRecord, action_of, older_than_wanted, wire_time
from gamead_core.config import AuditSettings, QueueSettings
from gamead_core.errors import AuditUnavailable, GameadError, QueueUnavailable
from gamead_core.jobs.model import Job
from gamead_core.models import utcnow
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.pull_feed import pull_feed
from gamead_core.queue.read_end import opened, unsubscribe_quietly

log = logging.getLogger("gamead.audit")

#: seconds a job's end record is retried while NATS is away
END_RETRY_SECONDS = 60.0
#: records read by the first window of a page; each next window is twice as large, up to :data:`MAX_WINDOW`
FIRST_WINDOW = 64
FILTERED_WINDOW = 1024  #: the first window of a filtered page
MAX_WINDOW = 8192
#: seconds a window's read waits for its next message before giving up (records are never deleted in the
#: middle of the stream, so only retention at its head can leave a window short)
READ_TIMEOUT = 2.0


def audit_stream_config(settings: AuditSettings, qs: QueueSettings) -> StreamConfig:
    """Stream ``GAMEAD_AUDIT`` (declared in ``gamead_core.queue.topology``)."""
    return StreamConfig(
        name=names.AUDIT_STREAM,
        description="gamead audit trail: every operator action (who, what, how many, outcome)",
        subjects=[names.AUDIT_SUBJECT_WILDCARD],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=settings.max_age,
        max_msgs=settings.max_msgs,
        max_bytes=settings.max_bytes,
        duplicate_window=qs.duplicate_window,
        num_replicas=qs.replicas,
    )


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditRecord]
    next_cursor: int | None  #: pass as ``before`` to read older records; None at the start of the trail
    scanned: int  #: records this page read
    complete: bool  #: False if ``audit.scan_limit`` stopped the read before the filter was answered

    def wire(self) -> dict[str, Any]:
        return {"items": [r.wire() for r in self.items], "count": len(self.items), "nextCursor": self.next_cursor,
                "scanned": self.scanned, "complete": self.complete}


class AuditLog:
    """Writes and reads audit records. ``js`` gives the node's JetStream context (None while NATS is away)."""

    def __init__(self, js: Callable[[], JetStreamContext | None], settings: AuditSettings, *,
                 reads: Callable[[], JetStreamContext | None] | None = None) -> None:
        self._js = js
        #: what :meth:`page` reads through: the API's reads connection (gamead_core.api.read_conn), else ``js``
        self._reads = reads or js
        self.settings = settings

    def _context(self, reads: bool = False) -> JetStreamContext:
        js = (self._reads if reads else self._js)()
        if js is None:
            raise QueueUnavailable("not connected to NATS")
        return js

    async def write(self, record: AuditRecord, *, msg_id: str | None = None) -> int:
        """Store ``record`` (on ``gamead.audit.<action>``); returns its sequence. ``msg_id`` (default: the
        record's id) deduplicates a retried write. Raises :class:`AuditUnavailable`."""
        payload = record.model_dump_json(by_alias=True, exclude_none=True, exclude={"seq"}).encode()
        try:
            js = self._context()
            with nats_boundary():
                ack = await js.publish(names.audit_subject(action_of(record.action)), payload,
                                       stream=names.AUDIT_STREAM, headers={names.HDR_MSG_ID: msg_id or record.id})
        except GameadError as exc:
            raise AuditUnavailable(f"the audit record could not be written: {exc.message}") from exc
        log.info("audit %s %s by %s", record.action, record.outcome, record.actor, extra={
            "audit_id": record.id, "action": record.action, "outcome": record.outcome, "actor": record.actor,
            "actor_role": record.role, "client": record.client, "request_id": record.request_id, "job_id": record.job_id,
            "code": record.code, "ads": record.ads})
        return int(ack.seq)

    async def page(self, flt: AuditFilter, *, limit: int = 50, before: int = 0) -> AuditPage:
        """The newest ``limit`` records matching ``flt`` with a sequence below ``before`` (0: from the newest)."""
        js = self._context(reads=True)
        with nats_boundary():
            state = (await js.stream_info(names.AUDIT_STREAM)).state
        first, last = int(state.first_seq), int(state.last_seq)
        hi = min(before - 1, last) if before > 0 else last
        items: list[AuditRecord] = []
        scanned = 0
        # ``--outcome accepted``: an accepted record that a later ``failed`` record of the same request ``undoes``
        # (names its sequence: a scale set that lost its compare-and-set, accepted then failed 409) was never carried
        # out. The failure is newer, so a newest-first scan meets it first; a page that starts below the newest
        # record also reads the UNDONE_LOOKUP records from its start up for failures undoing a record below it.
        undone: set[int] = set()
        if flt.outcome == "accepted" and 0 < before <= last:
            for seq, data in await self._read(js, before, min(last, before + UNDONE_LOOKUP - 1)):
                _note_undone(seq, data, undone)
        # unfiltered, the newest ``limit`` records are the page; a filter may need to look further back
        window = max(FIRST_WINDOW, limit) if flt == AuditFilter() else FILTERED_WINDOW
        lowest = hi + 1
        while hi >= first and state.messages:
            lo = max(first, hi - window + 1)
            batch = await self._read(js, lo, hi)
            for seq, data in reversed(batch):
                scanned += 1
                lowest = seq
                at = wire_time(data) if flt.timed else None
                if older_than_wanted(flt, at):
                    return AuditPage(items, None, scanned, True)
                if flt.outcome == "accepted":
                    _note_undone(seq, data, undone)
                if seq in undone and data.get("outcome") == "accepted":
                    pass  # never carried out (above); the whole trail keeps both records, as they were written
                elif flt.matches_wire(data, at) and (record := _record(seq, data)) is not None:
                    items.append(record)
                    if len(items) == limit:
                        return AuditPage(items, seq if seq > first else None, scanned, True)
                if scanned >= self.settings.scan_limit:
                    return AuditPage(items, lowest if lowest > first else None, scanned, lowest <= first)
            hi = lo - 1
            window = min(MAX_WINDOW, window * 2)
        return AuditPage(items, None, scanned, True)

    async def _read(self, js: JetStreamContext, lo: int, hi: int) -> list[tuple[int, dict[str, Any]]]:
        """``(sequence, JSON)`` of the records ``lo``-``hi``, oldest first (unreadable ones skipped, logged), from
        one pull consumer (one API call to create it; :mod:`gamead_core.queue.pull_feed`)."""
        out: list[tuple[int, dict[str, Any]]] = []
        if lo > hi:  # nothing to read: a consumer started past the end would wait READ_TIMEOUT for nothing
            return out
        with nats_boundary():
            # bounded bytes in flight (pull_feed), the consumer given up however the read ends (read_end)
            sub = await opened(pull_feed(js, names.AUDIT_SUBJECT_WILDCARD, stream=names.AUDIT_STREAM,
                                         config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                                               opt_start_seq=lo)))
            try:
                while True:
                    try:
                        msg = await sub.next_msg(timeout=READ_TIMEOUT)
                    except (nats.errors.TimeoutError, asyncio.TimeoutError):
                        break
                    seq = msg.metadata.sequence.stream
                    if seq > hi:
                        break
                    try:
                        data = orjson.loads(msg.data)
                    except orjson.JSONDecodeError:
                        data = None
                    if isinstance(data, dict):
                        out.append((seq, data))
                    else:
                        log.warning("audit record %d cannot be read; skipped", seq, extra={"audit_seq": seq})
                    if seq >= hi or msg.metadata.num_pending == 0:
                        break
            finally:
                await unsubscribe_quietly(sub)
        return out


#: records from a page's start up read for failures that undo an accepted record below it (``--outcome
#: accepted``). A failure is written as its request ends, so only the other records written while that one request
#: ran lie between the two: a page boundary hides nothing unless more than this many did.
UNDONE_LOOKUP = 1024


def _note_undone(seq: int, data: dict[str, Any], undone: set[int]) -> None:
    """Add to ``undone`` the sequence record ``seq`` (JSON ``data``) names in ``undoes``: the accepted record of its
    own request that was then not carried out (written by :class:`gamead_core.api.audit_gate.AuditGate`)."""
    undoes = data.get("undoes")
    if isinstance(undoes, int) and not isinstance(undoes, bool) and 0 < undoes < seq:
        undone.add(undoes)


def _record(seq: int, data: dict[str, Any]) -> AuditRecord | None:
    try:
        return AuditRecord.model_validate(data).model_copy(update={"seq": seq})
    except ValidationError:
        log.warning("audit record %d cannot be read; skipped", seq, extra={"audit_seq": seq})
        return None


async def record_action(audit: AuditLog | None, action: str, *, outcome: str = "accepted",
                        ctx: ActionContext | None = None, undoable: bool = True, **fields: Any) -> AuditRecord:
    """Write the record of the action being served (who: ``ctx``, by default
    :func:`gamead_core.audit.context.current`) and mark the request as recorded. Call it *before* acting: it
    raises :class:`AuditUnavailable` when the record cannot be written, and the action must then not be done
    (fail closed). An ``accepted`` record is the one a later failure of the same request names in ``undoes``
    (``ctx.accepted_seq``), unless ``undoable`` is False: a job's start, carried out whatever the request's answer
    (a ``job.cancel`` names a job too, and is undoable: attack27 F7)."""
    ctx = ctx or current()
    who: dict[str, Any] = {}
    if ctx is not None:
        who = {"actor": ctx.actor, "role": ctx.role, "client": ctx.client, "request_id": ctx.request_id,
               "method": ctx.method, "path": ctx.path}
    record = AuditRecord(at=utcnow(), action=action_of(action), outcome=outcome,  # type: ignore[arg-type]
                         **{**who, **fields})
    if audit is None:
        raise AuditUnavailable("the audit trail is not running on this API node")
    seq = await audit.write(record)
    if ctx is not None:
        ctx.recorded = True
        if outcome == "accepted" and undoable:
            ctx.accepted_seq, ctx.accepted_job_id = seq, record.job_id
    return record


def _selection(job: Job) -> dict[str, Any]:
    return job.selection.model_dump(mode="json", by_alias=True, exclude_none=True)


def _acted(job: Job) -> int | None:
    try:
        return job.counts.get(job.kind.acted)
    except (AttributeError, KeyError):  # a kind without a main count
        return None


class JobAudit:
    """The job framework's audit hook (:class:`gamead_core.jobs.runner.JobService` calls it for every kind of
    job): a job's start is recorded before the job exists (fail closed), its end once it has ended."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    async def job_started(self, job: Job) -> None:
        """Record ``accepted`` with the selection and how many ads were given; raises :class:`AuditUnavailable`."""
        given = job.counts.get("matched") if job.counts else job.selection.ids
        details = {k: v for k, v in {"rate": job.rate, "stopOnFailureRate": job.stop_on_failure_rate}.items()
                   if v is not None}
        await record_action(self.audit, job.kind.value, job_id=job.id, selection=_selection(job), ads=given,
                            details=details or None, undoable=False,
                            **({} if current() else {"actor": job.started_by}))

    async def job_taken_over(self, job: Job, from_node: str | None) -> None:
        """Record ``job.takeover`` (``accepted``: written as the new runner starts) for the job's owner
        (``started_by``), ``details`` ``fromNode`` (the runner whose lease expired), ``toNode`` (``job.runner``),
        ``resumes`` and ``phase``; one try, a failure logged (the resumed job must not wait for the trail)."""
        details = {"fromNode": from_node, "toNode": job.runner, "resumes": job.resumes, "phase": job.phase.value}
        record = AuditRecord(at=utcnow(), action="job.takeover", outcome="accepted", actor=job.started_by,
                             job_id=job.id, details=details, message=f"resumed by {job.runner} after the lease of "
                             f"{from_node or 'its runner'} expired")
        try:
            await self.audit.write(record, msg_id=f"takeover-{job.id}-{job.resumes}")
        except GameadError as exc:
            log.warning("the takeover of job %s could not be recorded in the audit trail: %s", job.id,
                        exc.message, extra={"job_id": job.id})

    async def job_ended(self, job: Job) -> None:
        """Record the job's final state with its counts, retrying while NATS is away (then it is logged)."""
        record = AuditRecord(at=utcnow(), action=action_of(job.kind.value),
                             outcome=job.state.value,  # type: ignore[arg-type]
                             actor=job.started_by, job_id=job.id, selection=_selection(job), ads=_acted(job),
                             counts=dict(job.counts), message=job.stop_reason)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + END_RETRY_SECONDS
        while True:
            try:
                await self.audit.write(record, msg_id=f"end-{job.id}")
                return
            except AuditUnavailable as exc:
                if loop.time() >= deadline:
                    log.error("the end of job %s could not be recorded in the audit trail: %s", job.id,
                              exc.message, extra={"job_id": job.id})
                    return
                await asyncio.sleep(1.0)
