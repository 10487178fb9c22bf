"""What an operator job is: its document (kept in KV bucket ``gamead_jobs``), its states, and the marks its
work list carries. The document is the wire form too (``GET /v1/jobs/{id}``), camelCase like every answer.

A job acts on a **work list**: one item per DLQ entry (``[adId, seq]``), for an import per entry to write, for a
repair per action (``[kind, item, fence, …]``, see ``gamead_core.doctor.repair``).
Beside the items the list keeps one **mark** per item (one character, :class:`Mark`) saying what became of it;
every count in the document is derived from the marks (:func:`gamead_core.jobs.policy.tally`), so the counts
always add up: ``matched = done + remaining``, ``done = <acted> + skipped``, and for a replay
``replayed = completed + deadAgain + stillRunning``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Final, Literal

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gamead_core.shared_numbers import Count, Epoch
from gamead_core.times import UtcDatetime

_WIRE = ConfigDict(alias_generator=AliasGenerator(alias=to_camel), populate_by_name=True, serialize_by_alias=True)


class JobKind(str, Enum):
    REPLAY = "replay"
    PURGE = "purge"
    IMPORT = "import"
    REPAIR = "repair"  #: ``gamead doctor --repair``: one item per repair action (gamead_core.doctor.repair)

    @property
    def acted(self) -> str:
        """The name of this kind's main count: ``replayed``, ``purged``, ``imported`` or ``repaired``."""
        return {"replay": "replayed", "purge": "purged", "import": "imported", "repair": "repaired"}[self.value]


class JobState(str, Enum):
    """``queued → running → succeeded | failed | cancelled | interrupted``.

    ``failed``: stopped by ``stopOnFailureRate`` or by an error (``stopReason`` says which). ``interrupted``:
    its runner died more than ``jobs.max_resumes`` times (each time another API node resumed it).
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def terminal(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


class JobPhase(str, Enum):
    """``selecting`` (building the work list) → ``acting`` (one fenced action per item) → ``following``
    (a replay waits for its replayed ads to complete or die again, at most ``jobs.follow_timeout``) →
    ``done``."""

    SELECTING = "selecting"
    ACTING = "acting"
    FOLLOWING = "following"
    DONE = "done"


class Mark:
    """What became of one work item. One character so a work list of 100,000 items stays small."""

    PENDING: Final = "."
    ACTED: Final = "r"  #: replayed (outcome not known yet) / purged / imported
    COMPLETED: Final = "c"  #: replayed, then completed
    DEAD_AGAIN: Final = "D"  #: replayed, then dead-lettered again
    GONE: Final = "g"
    NEWER: Final = "n"
    NOT_DEAD: Final = "s"
    OTHER_JOB: Final = "j"
    DUPLICATE: Final = "u"
    EXISTS: Final = "e"
    UNREADABLE: Final = "?"
    BUSY: Final = "b"
    PURGED: Final = "p"
    KEPT: Final = "k"  #: an import found a different entry of the ad here, and kept it
    # a repair's actions (kind ``repair``), each counted by name (REPAIRED) and as ``repaired``
    REPUBLISHED: Final = "P"
    DEAD_LETTERED: Final = "L"
    ENTRY_WRITTEN: Final = "W"
    MESSAGE_REMOVED: Final = "M"
    ENTRY_REMOVED: Final = "E"
    RECORD_CREATED: Final = "K"
    OBJECT_CREATED: Final = "O"
    OBJECT_DELETED: Final = "X"
    JOB_TAKEN_OVER: Final = "T"
    LEASE_RELEASED: Final = "R"
    HEALED: Final = "h"
    LEFT: Final = "l"
    MISMATCHED: Final = "x"

    #: skipped items, by reason (the wire text of ``skippedReasons``)
    SKIPPED: Final[dict[str, str]] = {
        GONE: "no longer in the DLQ (replayed, purged or expired meanwhile)",
        NEWER: "replaced by a newer entry (the ad died again or was imported after this job selected it)",
        NOT_DEAD: "the ad's record is not dead",
        OTHER_JOB: "another job is acting on this entry",
        DUPLICATE: "already in the DLQ, identical",
        KEPT: "the ad already has a different DLQ entry here, kept (an import never replaces one; replay or "
              "purge it first)",
        EXISTS: "the ad is alive here (queued, processing or completed)",
        PURGED: "the ad was purged here before: a purge is final",
        UNREADABLE: "the entry cannot be read, or is invalid (e.g. no such priority)",
        BUSY: "the ad's record kept changing under this job; run the job again",
        HEALED: "healthy again (or changed by someone else) when the repair came to it",
        LEFT: "left alone: not safe to change (e.g. an ad alive and not replayed from its DLQ entry)",
        MISMATCHED: "the ad's record names another ad than its key: no repair acts on it (gamead doctor: "
                    "record_key_mismatch, with the fix)",
    }
    #: the count each repair action adds to (a repair job's ``counts``)
    REPAIRED: Final[dict[str, str]] = {
        REPUBLISHED: "republished", DEAD_LETTERED: "deadLettered", ENTRY_WRITTEN: "entriesWritten",
        MESSAGE_REMOVED: "messagesRemoved", ENTRY_REMOVED: "entriesRemoved", RECORD_CREATED: "recordsCreated",
        OBJECT_CREATED: "objectsCreated", OBJECT_DELETED: "objectsDeleted", JOB_TAKEN_OVER: "jobsTakenOver",
        LEASE_RELEASED: "leasesReleased",
    }
    ACTED_ALL: Final = frozenset({ACTED, COMPLETED, DEAD_AGAIN, *REPAIRED})


class Selection(BaseModel):
    """Which entries a job acts on. ``fence``: the DLQ's last sequence when the job was created; a job never
    acts on a newer entry."""

    model_config = _WIRE

    mode: Literal["ids", "filter", "all", "entries", "doctor"]
    filter: dict[str, Any] | None = None
    ids: Count | None = Field(None, description="How many ids were given (mode ids).")
    not_in_dlq: Count = Field(0, description="Given ids that had no entry at or below the fence.")
    fence: Count = 0
    limit: Count | None = None
    past_limit: bool = Field(False, description="More entries matched than `limit`: the job acted on the first "
                             "`limit` (oldest first), the rest stay in the DLQ.")


class CancelRequest(BaseModel):
    model_config = _WIRE

    by: str
    at: UtcDatetime


class Job(BaseModel):
    """One operator job's document (``GET /v1/jobs/{id}``). Times are UTC; ``leaseUntil`` is epoch seconds."""

    model_config = _WIRE

    id: str
    kind: JobKind
    state: JobState = JobState.QUEUED
    phase: JobPhase = JobPhase.SELECTING
    selection: Selection
    counts: dict[str, Count] = Field(default_factory=dict)
    skipped_reasons: dict[str, Count] = Field(default_factory=dict)
    started_by: str
    created_at: UtcDatetime
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    rate: float | None = Field(None, description="Actions per second (replay).")
    stop_on_failure_rate: float | None = None
    stop_reason: str | None = None
    runner: str | None = Field(None, description="The API node running the job.")
    lease_until: Epoch = 0.0
    lease_ttl: Epoch | None = Field(None, description="Seconds each renewal of the runner's lease lasts (its "
                                    "jobs.lease): it renewed at leaseUntil − leaseTtl. None: written before fix32.")
    resumes: Count = Field(0, description="Times another API node took the job over from a dead runner.")
    cancel_requested: CancelRequest | None = None
    chunks: Count = Field(0, description="Chunks of the work list in the jobs bucket.")
    follow_until: Epoch | None = None
    findings: dict[str, Count] | None = Field(
        None, description="A repair: what the doctor found when the job started (count per kind of problem).")
    waiting: str | None = Field(
        None, description="What the action under way waits for and until when (a repair releasing a stuck lease "
        "waits for it to stay unchanged for its TTL); None when it waits for nothing.")

    def wire(self) -> dict[str, Any]:
        """The JSON form (camelCase, UTC times ``…Z``)."""
        return self.model_dump(mode="json", by_alias=True)

