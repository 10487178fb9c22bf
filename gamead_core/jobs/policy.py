"""Pure decisions of operator jobs: the counts from the marks, the failure-rate stop, pacing, leases."""

from __future__ import annotations

from collections import Counter

from gamead_core.errors import GameadError, error_text
from gamead_core.jobs.model import Job, JobKind, JobPhase, JobState, Mark
from gamead_core.scaling.lease_rule import CLOCK_SLACK, silence_window, stuck_why, trust_cap

#: Replayed ads that must have finished (completed or dead again) before a failure rate is judged.
MIN_SAMPLE = 5


def failure_rate_exceeded(completed: int, failed: int, threshold: float | None) -> bool:
    """Stop a bulk replay once at least :data:`MIN_SAMPLE` replayed ads finished and more than ``threshold``
    (0-1) of them died again. ``None`` never stops."""
    if threshold is None:
        return False
    done = completed + failed
    return done >= MIN_SAMPLE and failed / done > threshold


def tally(kind: JobKind, marks: str) -> tuple[dict[str, int], dict[str, int]]:
    """``(counts, skippedReasons)`` of a work list's marks (see ``gamead_core.jobs.model``).

    counts: ``matched`` (items), ``done`` (items handled), ``remaining`` (not handled: the job stopped),
    ``<acted>`` (``replayed``/``purged``/``imported``), ``skipped``; for a replay also ``completed``,
    ``deadAgain`` and ``stillRunning`` (replayed ads not seen completed nor dead again yet: while the job
    runs, its runner looks at them as it goes, at least every second or so for up to 200 of them, see
    ``gamead_core.jobs.run.OBSERVE_BATCH``; so these figures are true while it runs, not only after it).
    """
    seen = Counter(marks)
    acted = sum(seen[m] for m in Mark.ACTED_ALL)
    skipped = {Mark.SKIPPED[m]: n for m, n in seen.items() if m in Mark.SKIPPED and n}
    counts = {
        "matched": len(marks),
        "done": len(marks) - seen[Mark.PENDING],
        "remaining": seen[Mark.PENDING],
        kind.acted: acted,
        "skipped": sum(skipped.values()),
    }
    if kind == JobKind.REPLAY:
        counts.update(completed=seen[Mark.COMPLETED], deadAgain=seen[Mark.DEAD_AGAIN], stillRunning=seen[Mark.ACTED])
    if kind == JobKind.REPAIR:
        counts.update({name: seen[mark] for mark, name in Mark.REPAIRED.items()})
    return counts, skipped


def failure_reason(phase: JobPhase, exc: BaseException) -> str:
    """A failed job's ``stopReason`` for error ``exc`` met in ``phase``: a gamead error by its message, another by
    its class and message; in ``selecting`` (no work list yet: nothing was done) ``could not select entries: <why>;
    retry`` (attack34a F2: such a job said ``error: TimeoutError: nats: timeout`` and "replayed 0 of 0 matched"
    while 1,500 entries matched), else ``error: <why>``. Pure."""
    message = error_text(exc)
    if not isinstance(exc, GameadError) and message != type(exc).__name__:
        message = f"{type(exc).__name__}: {message}"
    if phase == JobPhase.SELECTING:
        return f"could not select entries: {message}; retry"
    return f"error: {message}"


def pace_delay(started: float, actions: int, rate: float | None, now: float) -> float:
    """Seconds to wait before action number ``actions`` (0-based) so that at most ``rate`` actions per
    second run, counted from ``started`` (monotonic seconds). Skipped items cost no time."""
    if not rate:
        return 0.0
    return max(0.0, started + actions / rate - now)




def lease_expired(job: Job, now: float, *, unchanged_for: float = 0.0, lease: float | None = None) -> bool:
    """True if ``job`` is unfinished and its runner has not renewed its lease (epoch seconds) by ``now``; or (with
    ``lease``, the silence window of :func:`lease_window`, seconds) its lease has not changed for ``unchanged_for``
    s > ``lease`` on the reader's own monotonic clock, whatever ``leaseUntil`` says: one that died with a
    ``leaseUntil`` an hour ahead (its clock ahead, a hand edit) keeps its job for that window, not the hour
    (attack31b F2b; the rule of :func:`gamead_core.scaling.lease_rule.silent`). Times are nats-server's, as each
    API node samples it (:mod:`gamead_core.clock`): the hosts' own clocks need not agree."""
    if job.state.terminal:
        return False
    return job.lease_until < now or (lease is not None and unchanged_for > lease)


def written_ttl(job: Job, now: float) -> float:
    """Seconds ``job``'s lease lasts from its runner's last renewal, as the runner wrote it (``leaseTtl``, its
    ``jobs.lease``), the job leases' ``expiresAt − renewedAt`` of the leader leases (fix32); for a document written
    before there was one, what is left of it at ``now`` (epoch s), which outlasts its runner's next renewal all
    the same. Pure."""
    return job.lease_ttl if job.lease_ttl else max(0.0, job.lease_until - now)


def lease_window(written: float, lease: float) -> float:
    """Seconds a job's lease may stand unchanged before a reader takes it as silent: ``max(lease, min(written,
    10 × lease))``, ``lease`` the reader's ``jobs.lease``, ``written`` the lease's :func:`written_ttl` when the
    reader first saw it: the leader leases' rule, :func:`gamead_core.scaling.lease_rule.silence_window`. A runner
    renews every ``its own jobs.lease / 3``, so a reader with a shorter ``jobs.lease`` never takes a live runner's
    job (review31 R4); the cap (:func:`trust_cap`) bounds a hand-edited one. Pure."""
    return silence_window(written, lease)


def lease_key(job: Job) -> tuple[str | None, float]:
    """What a live runner changes at each renewal: its id and ``leaseUntil`` (for :func:`lease_expired`'s
    ``unchanged_for``, timed by the reader)."""
    return job.runner, job.lease_until


def lease_too_far(job: Job, now: float, lease: float) -> bool:
    """True if unfinished ``job``'s ``leaseUntil`` lies more than 10 × ``lease`` (``jobs.lease`` s, :func:`trust_cap`)
    + :data:`CLOCK_SLACK` ahead of ``now`` (epoch s): a runner renews to ``now + its jobs.lease``, and no node's
    ``jobs.lease`` is trusted to be 10 times this one's, so a clock ahead or a hand edit wrote it (not a node
    configured with a longer lease: review31 R5)."""
    return not job.state.terminal and job.lease_until > now + trust_cap(lease) + CLOCK_SLACK


def runner_node(runner: str | None) -> str | None:
    """The registry id an API node before attack44 had as the job runner ``runner`` (``<host>-<pid>-<6 chars>`` →
    ``api-<host>-<pid>``); None for none or another form. A later node's id is ``api-<runner>``
    (:func:`gamead_core.registry.new_api_node_id`): :func:`stuck_text` looks for either."""
    head, _, tail = (runner or "").rpartition("-")
    return f"api-{head}" if head and len(tail) == 6 else None


def stuck_text(job: Job, now: float, lease: float, registered: set[str] | None,
               gone_unproven: bool = False) -> str | None:
    """Why unfinished ``job``, its lease not expired at ``now`` (epoch s), has no live runner, for the doctor
    (attack31b F2b); None when it may have one. The leader leases' rule (:func:`gamead_core.scaling.lease_rule.
    stuck_why`, fix32): a runner whose API node has a live registry entry is never stuck (``registered``: live
    node ids; None: unknown); otherwise it is when its lease was renewed ahead of ``now`` (``leaseUntil −
    leaseTtl``: a clock ahead), its ttl is longer than 10 × ``lease`` (``jobs.lease`` s) allows (for a document
    without ``leaseTtl``, what is left of it: :func:`written_ttl`), or its runner's node is not registered — unless
    ``gone_unproven`` (the registry's bucket too young to prove a node gone: lease51). Pure."""
    if job.state.terminal or lease_expired(job, now):
        return None
    node = runner_node(job.runner)
    written = written_ttl(job, now)
    renewed_ahead = job.lease_until - job.lease_ttl - now if job.lease_ttl else 0.0
    kind = stuck_why(renewed_ahead=renewed_ahead, written_ttl=written, ttl=lease,
                     registered=None if registered is None or node is None else bool(
                         {node, f"api-{job.runner}"} & registered), gone_unproven=gone_unproven)
    if kind is None:
        return None
    if kind == "clock_ahead":
        why = (f"its lease was renewed {renewed_ahead:.0f} s ahead of now (leaseUntil − leaseTtl): its runner's "
               "clock is ahead or it was written by hand")
    elif kind == "ttl_too_long":
        why = (f"its lease lasts {written:.0f} s, more than 10 × jobs.lease ({trust_cap(lease):g} s): it was written "
               "by hand or by a bug")
    else:
        why = f"its runner's node ({node}) has no live registry entry (it is gone)"
    return (f"{job.kind.value} job {job.state.value}, runner {job.runner}: {why}; nodes of this version take it "
            "over once its lease stood unchanged for its length (at most 10 × jobs.lease), older ones when it passes")


def cancelled_end(counts: dict[str, int], by: str, final: tuple[JobState, str | None],
                  note: str = "") -> tuple[JobState, str]:
    """``(state, stopReason)`` of a job whose cancel (by ``by``) took effect, from its ``counts`` (:func:`tally`)
    then: ``cancelled``, ``cancelled by <by><note>``, unless its work was all done — items matched, none
    ``remaining`` and, for a replay, none ``stillRunning`` — then the cancel stopped nothing: the job ends as it
    would have (``final``, e.g. ``(succeeded, None)``), its reason saying the cancel came after (regress39 F3: 12
    of 15 replays cancelled after every ad was replayed and settled ended ``cancelled``). Pure."""
    if "matched" in counts and counts.get("remaining", 0) == 0 and counts.get("stillRunning", 0) == 0:
        state, reason = final
        late = f"the cancel by {by} came after all its work was done{note}"
        return state, f"{reason}; {late}" if reason else late
    return JobState.CANCELLED, f"cancelled by {by}{note}"


def resume_decision(job: Job, max_resumes: int) -> JobState:
    """What a node that finds ``job``'s lease expired does: resume it (``running``), or end it as
    ``cancelled`` (a cancel was asked for) or ``interrupted`` (its runners died more than ``max_resumes``
    times: something about the job itself may kill them)."""
    if job.cancel_requested is not None:
        return JobState.CANCELLED
    if job.resumes >= max_resumes:
        return JobState.INTERRUPTED
    return JobState.RUNNING


def summary(job: Job) -> str:
    """One line a person reads: every figure says what it is. e.g. ``replayed 28 of 28 matched · completed
    28 · dead again 0 · skipped 0`` (``· still running N`` before the skipped count while it runs). Once the
    job has ended, nothing follows its replayed ads any more: those not settled then are "not finished when
    the job ended", not "still running"."""
    c = job.counts
    acted = job.kind.acted
    if "matched" not in c and not job.chunks:  # no work list: its selection never ended (attack34a F2)
        return unselected(job)
    if job.kind == JobKind.REPAIR:
        parts = [f"{c.get(acted, 0):,} of {c.get('matched', 0):,} repair actions taken"]
        parts += [f"{_REPAIR_WORDS[name]} {c[name]:,}" for name in Mark.REPAIRED.values() if c.get(name)]
        parts.append(f"skipped {c.get('skipped', 0):,}")
        if c.get("remaining"):
            parts.append(f"not done {c['remaining']:,}")
        return " · ".join(parts)
    parts = [f"{acted} {c.get(acted, 0):,} of {c.get('matched', 0):,} matched"]
    if job.kind == JobKind.REPLAY:
        parts += [f"completed {c.get('completed', 0):,}", f"dead again {c.get('deadAgain', 0):,}"]
        if not job.state.terminal:
            parts.append(f"still running {c.get('stillRunning', 0):,}")
        elif c.get("stillRunning"):
            parts.append(f"not finished when the job ended {c['stillRunning']:,}")
    parts.append(f"skipped {c.get('skipped', 0):,}")
    if c.get("remaining"):
        parts.append(f"not done {c['remaining']:,}")
    if job.selection.not_in_dlq:
        parts.append(f"ids not in the DLQ {job.selection.not_in_dlq:,}")
    if job.selection.past_limit:  # never "N of N matched" over part of what matched (doctor36)
        parts.append(f"more entries matched than the job's limit ({job.selection.limit or 10_000:,}): left in the DLQ")
    return " · ".join(parts)


def unselected(job: Job) -> str:
    """The outcome of a job without a work list: ``selection failed: nothing was done`` (failed),
    ``ended cancelled before its selection: nothing was done`` (cancelled, interrupted), ``selecting entries (none
    acted on yet)`` (running); never "0 of 0 matched", which says its selection ran and found nothing. Pure."""
    if job.state == JobState.FAILED:
        return "selection failed: nothing was done"
    if job.state.terminal:
        return f"ended {job.state.value} before its selection: nothing was done"
    return "selecting entries (none acted on yet)"


def mark_words(mark: str) -> str:
    """What a work item's mark (:class:`Mark`, one character) means, in words for logs and people: e.g. ``W`` →
    ``DLQ entry written``, ``h`` → ``skipped: healthy again …``, ``D`` → ``dead again``."""
    if mark in Mark.SKIPPED:
        return f"skipped: {Mark.SKIPPED[mark]}"
    return _MARK_WORDS.get(mark, f"mark {mark!r}")


_MARK_WORDS = {
    Mark.PENDING: "not done yet", Mark.ACTED: "done", Mark.COMPLETED: "completed", Mark.DEAD_AGAIN: "dead again",
    Mark.REPUBLISHED: "re-published", Mark.DEAD_LETTERED: "dead-lettered", Mark.ENTRY_WRITTEN: "DLQ entry written",
    Mark.MESSAGE_REMOVED: "work message removed", Mark.ENTRY_REMOVED: "DLQ entry removed",
    Mark.RECORD_CREATED: "record created", Mark.OBJECT_CREATED: "stream/consumer/bucket created",
    Mark.OBJECT_DELETED: "obsolete stream deleted", Mark.JOB_TAKEN_OVER: "stuck job taken over",
    Mark.LEASE_RELEASED: "stuck lease released",
}
_REPAIR_WORDS = {
    "republished": "re-published", "deadLettered": "dead-lettered", "entriesWritten": "DLQ entries written",
    "messagesRemoved": "work messages removed", "entriesRemoved": "DLQ entries removed",
    "recordsCreated": "records created", "objectsCreated": "streams/consumers/buckets created",
    "objectsDeleted": "obsolete streams deleted", "jobsTakenOver": "stuck jobs taken over",
    "leasesReleased": "stuck leases released",
}
