"""What one audit record says, the actions it names, and the pure rules around them (no I/O).

A record answers *when* (``at``, UTC), *who* (``actor``: the token's name or ``anonymous``; ``role``; ``client``:
the address the request came from), *what* (``action``; ``selection``: ids count / filter / all; ``ads``: how
many ads), *how it went* (``outcome``, with ``code`` and ``message`` when refused or failed; ``counts`` when a
job ends), and the ids that tie records together (``jobId``, ``requestId``).
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Final, Literal

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from ulid import ULID

from gamead_core.ids import is_job_id, is_worker_id, normal_id
from gamead_core.jobs.model import JobKind
from gamead_core.times import UtcDatetime


def _actions() -> dict[str, str]:
    # every job kind (replay, purge, import, and any added later, such as the doctor's repair) is an action
    actions = {kind.name: kind.value for kind in JobKind}
    actions.update(JOB_CANCEL="job.cancel", JOB_TAKEOVER="job.takeover", SCALE_SET="scale.set",
                   SCALE_CLEAR="scale.clear", WORKER_QUIET="worker.quiet", WORKER_RESUME="worker.resume",
                   REFUSALS_SUPPRESSED="refusals_suppressed", OTHER="other")
    return actions


#: What an operator did. A job's action is its kind (``replay``, ``purge``, ``import``, ``repair``…);
#: ``job.cancel``; ``job.takeover`` (an API node resumed a job whose runner's lease expired: ``details``
#: ``fromNode``, ``toNode``, ``resumes``, ``phase``); ``scale.set`` / ``scale.clear`` (the autoscaler's manual
#: override); ``worker.quiet`` / ``worker.resume`` (``gamead workers quiet|resume ID``: ``details`` ``workerId``,
#: the worker's answer); ``refusals_suppressed``: the refusals of a window past ``audit.node_refusals``, counted
#: (:mod:`gamead_core.audit.refusal_cap`); ``other``: a ``/v1`` write that is not one of these (a route added later
#: that writes no record of its own).
AuditAction = Enum("AuditAction", _actions(), type=str)  # type: ignore[misc]

Outcome = Literal["accepted", "refused", "failed", "succeeded", "cancelled", "interrupted"]
#: ``accepted``: the action passed its checks and its record was written before anything was done;
#: ``refused`` (with ``code``): nothing was done; ``failed`` (with ``code``): accepted, then an error stopped it;
#: a job's end: ``succeeded`` | ``failed`` | ``cancelled`` | ``interrupted`` (its final state), with ``counts``.
OUTCOMES: Final[tuple[str, ...]] = ("accepted", "refused", "failed", "succeeded", "cancelled", "interrupted")

_WIRE = ConfigDict(alias_generator=AliasGenerator(alias=to_camel), populate_by_name=True, serialize_by_alias=True)


def new_record_id() -> str:
    """A fresh, time-sortable record id (lowercase ULID, as gamead's other ids)."""
    return str(ULID()).lower()


class AuditRecord(BaseModel):
    """One audit record (``GET /v1/audit``; JSON in stream ``GAMEAD_AUDIT``)."""

    model_config = _WIRE

    id: str = Field(default_factory=new_record_id, description="The record's id (ULID).")
    seq: int | None = Field(None, description="Sequence in stream GAMEAD_AUDIT (set when read; the cursor).")
    at: UtcDatetime
    action: str = Field(description="replay | purge | import | repair | job.cancel | job.takeover | scale.set | "
                                    "scale.clear | worker.quiet | worker.resume | refusals_suppressed | other")
    outcome: Outcome
    actor: str = Field(description="The token's name, or `anonymous`.")
    role: str | None = Field(None, description="The token's role (submitter, viewer, operator).")
    client: str | None = Field(None, description="The client address the request came from.")
    request_id: str | None = Field(None, description="The request's `X-Request-Id`.")
    method: str | None = None
    path: str | None = None
    code: str | None = Field(None, description="The error code of a refused or failed action.")
    message: str | None = Field(None, description="Why: the error's message, or a job's stop reason.")
    job_id: str | None = None
    selection: dict[str, Any] | None = Field(None, description="A job's selection: mode (ids, filter, all, "
                                                               "entries), ids count, filter, limit.")
    ads: int | None = Field(None, description="How many ads: given (ids, entries) when accepted; acted on when "
                                              "a job ended.")
    counts: dict[str, int] | None = Field(None, description="A job's counts when it ended.")
    details: dict[str, Any] | None = Field(None, description="Action-specific: the override's replicas (asked) and "
                                           "effectiveReplicas (clamped to minReplicas..maxReplicas, also recorded), …")
    undoes: int | None = Field(None, description="On a request's `failed` record: the sequence of the same "
                               "request's `accepted` record, which was then not carried out (a scale set that lost "
                               "its compare-and-set); `outcome=accepted` leaves that record out.")
    repeats: int | None = Field(None, description="Refusals of this caller not recorded one by one since the "
                                                  "previous record (audit.refusals_per_minute); on a "
                                                  "`refusals_suppressed` record, those of all callers past "
                                                  "audit.node_refusals in its window.")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def action_of(value: str) -> str:
    """``value`` if it names an :data:`AuditAction`, else ``other``."""
    try:
        return AuditAction(value).value  # type: ignore[no-any-return]
    except ValueError:
        return "other"


#: ``/v1`` writes gamead ships, and the action each one is (the gate refuses before any handler runs, so a
#: refusal is named from the request alone)
_ROUTE_ACTIONS: Final[tuple[tuple[str, re.Pattern[str], str], ...]] = (
    ("POST", re.compile(r"/v1/dlq/replay"), "replay"),
    ("POST", re.compile(r"/v1/dlq/purge"), "purge"),
    ("POST", re.compile(r"/v1/dlq/import"), "import"),
    ("POST", re.compile(r"/v1/jobs/[^/]+/cancel"), "job.cancel"),
    ("POST", re.compile(r"/v1/scale/override"), "scale.set"),
    ("DELETE", re.compile(r"/v1/scale/override"), "scale.clear"),
    ("POST", re.compile(r"/v1/workers/[^/]+/quiet"), "worker.quiet"),
    ("POST", re.compile(r"/v1/workers/[^/]+/resume"), "worker.resume"),
    ("POST", re.compile(r"/v1/doctor/repair"), "repair"),
)


def action_for(method: str, path: str) -> str:
    """The action a request is (:data:`AuditAction` value), from its method and path alone. Pure."""
    for verb, pattern, action in _ROUTE_ACTIONS:
        if method == verb and pattern.fullmatch(path):
            return action_of(action)
    return "other"


_JOB_PATH: Final = re.compile(r"/v1/jobs/([^/]+)/[^/]+")


def job_of_path(path: str) -> str | None:
    """The job id a ``/v1/jobs/{id}/…`` action names (lowercase), or None (another path, or no job id: a client's
    string is never recorded as one). A refusal's record carries it, so ``gamead audit --job ID`` lists a refused
    cancel too (regress39 F2: 15 refused cancels recorded with no job). Pure."""
    found = _JOB_PATH.fullmatch(path)
    job = normal_id(found[1]) if found else None
    return job if job is not None and is_job_id(job) else None


_WORKER_PATH: Final = re.compile(r"/v1/workers/([^/]+)/(?:quiet|resume)")


def worker_of_path(path: str) -> str | None:
    """The worker id a ``/v1/workers/{id}/quiet|resume`` action names, or None (another path, or no worker id: a
    client's string is never recorded as one). A failed or refused record carries it as ``details.workerId``, as the
    accepted one does (newcomer56: ``gamead audit`` showed a failed ``worker.quiet``'s WHAT as ``-``). Pure."""
    found = _WORKER_PATH.fullmatch(path)
    return found[1] if found and is_worker_id(found[1]) else None


#: a client's ``X-Request-Id`` is kept when it looks like an id; anything else is replaced by a fresh one
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def request_id_from(header: str | None) -> str:
    """The client's ``X-Request-Id`` if it is 1-64 characters of ``A-Z a-z 0-9 . _ : -``, else a new ULID."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return new_record_id()


#: the form of a token's name (``auth.tokens[].name``) or ``anonymous``: what ``actor`` filters accept
ACTOR_PATTERN: Final[str] = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"


@dataclass(frozen=True)
class AuditFilter:
    """Which records a reader wants; every field narrows, none means all. Pure matching."""

    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    job_id: str | None = None
    since: datetime | None = None  #: at or after (aware)
    until: datetime | None = None  #: before (aware)

    def matches(self, record: AuditRecord) -> bool:
        return ((self.actor is None or record.actor == self.actor)
                and (self.action is None or record.action == self.action)
                and (self.outcome is None or record.outcome == self.outcome)
                and (self.job_id is None or record.job_id == self.job_id)
                and (self.since is None or record.at >= self.since)
                and (self.until is None or record.at < self.until))

    def matches_wire(self, data: dict[str, Any], at: datetime | None) -> bool:
        """:meth:`matches` on a record's JSON (``at`` parsed by the caller, only needed with since/until):
        a scan decodes in full only the records it keeps."""
        return ((self.actor is None or data.get("actor") == self.actor)
                and (self.action is None or data.get("action") == self.action)
                and (self.outcome is None or data.get("outcome") == self.outcome)
                and (self.job_id is None or data.get("jobId") == self.job_id)
                and (self.since is None or (at is not None and at >= self.since))
                and (self.until is None or (at is not None and at < self.until)))

    @property
    def timed(self) -> bool:
        return self.since is not None or self.until is not None


#: records of several API nodes interleave in the stream; their clocks may differ by this much (seconds)
CLOCK_SKEW: Final = 60.0


def older_than_wanted(flt: AuditFilter, at: datetime | None) -> bool:
    """True once a newest-first scan has reached a record at ``at``, older than ``since`` by more than
    :data:`CLOCK_SKEW`: it can stop."""
    return flt.since is not None and at is not None and (flt.since - at).total_seconds() > CLOCK_SKEW


def wire_time(data: dict[str, Any]) -> datetime | None:
    """A record's ``at`` from its JSON (aware UTC), or None if it has none readable."""
    try:
        at = datetime.fromisoformat(str(data.get("at")))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


class RefusalThrottle:
    """At most ``per_minute`` refusal records per caller (a token bucket per key, in memory, per API node);
    :meth:`take` says whether to write one now and how many were skipped since the last one written.

    Why: refused attempts are worth recording (a viewer trying to purge), but the stream keeps a bounded number
    of records, dropping the oldest: a caller hammering a refused route must not push the trail out. Keys are
    bounded (:data:`MAX_KEYS`, least recently used dropped)."""

    MAX_KEYS: Final = 10_000

    def __init__(self, per_minute: int, *, clock: Any = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float, int]] = OrderedDict()  # key → (tokens, t, skipped)

    def take(self, key: str) -> tuple[bool, int]:
        """``(write, skipped)``: write a record now?, and how many refusals were not written before it."""
        now = self.clock()
        tokens, then, skipped = self._buckets.pop(key, (self.burst, now, 0))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now, 0)
            result = (True, skipped)
        else:
            self._buckets[key] = (tokens, now, skipped + 1)
            result = (False, skipped + 1)
        while len(self._buckets) > self.MAX_KEYS:
            self._buckets.popitem(last=False)
        return result
