"""The shapes of the API's successful answers, for ``/openapi.json`` (``response_model=`` of each route).

Routes build their answers themselves (orjson, no re-validation on the way out); these models say what those
answers are, so a client (and Schemathesis, in the test suite) can check them. Fields a route leaves out when
empty are optional here. Open-ended sections (``/v1/stats``, ``/v1/workers``, ``/v1/scale``) are documented
as objects with their top-level keys; their figures are described in the README.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gamead_core.jobs.model import Job
from gamead_core.models import AdRecord, DlqEntry


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow", alias_generator=AliasGenerator(alias=to_camel), populate_by_name=True)


class AdPage(_Doc):
    """``GET /ads``."""

    items: list[AdRecord]
    count: int = Field(description="Items in this page.")
    total: int = Field(description="Ads matching the filters among the records scanned (the newest "
                                   "`api.list_scan_limit`), every page's.")
    offset: int = Field(0, description="Matching ads before this page (newer than `cursor`; 0 on the first page): "
                                       "it holds rows `offset + 1` to `offset + count` of `total`.")
    next_cursor: str | None = Field(None, description="Pass as `cursor` (same filters) for the next page, older "
                                                      "ads; null on the last page.")
    scanned: int = Field(description="Records this request read: the newest, at most `api.list_scan_limit` "
                                     "when it began, plus those written while it read.")
    complete: bool = Field(description="False when older records were not read (`api.list_scan_limit`): an ad "
                                       "missing here may still exist.")
    unreadable: int = Field(0, description="Records of the scanned window this gamead cannot read as ad records "
                                           "(not JSON, not a record, or a value a newer gamead writes): skipped, "
                                           "not counted in `total`; `gamead doctor` names them. A record whose "
                                           "id, status, priority and submittedAt read is decoded whole only if it "
                                           "would be on the page: one whose rest does not read counts only then.")
    unreadable_ids: list[str] = Field(default_factory=list, description="The keys of the first 20 of them.")


class DlqPage(_Doc):
    """``GET /v1/dlq``."""

    items: list[DlqEntry]
    count: int = Field(description="Items in this page.")
    total: int | None = Field(description="Entries matching the filters (every entry without one), from `cursor` "
                                          "on, among those read (`complete` false: the read stopped short), as for "
                                          "`GET /ads`; null when `count=false` asked for none. A filtered count "
                                          "stops at the fence (`untilSeq`).")
    offset: int | None = Field(None, description="Matching entries before this page (up to `cursor`; 0 on the first "
                               "page, oldest first): it holds rows `offset + 1` to `offset + count` of `total`. "
                               "Null when not counted (no filter after a cursor, `--newest`, `count=false`, or the "
                               "count stopped at its budget).")
    in_dlq: int = Field(0, description="Entries in the whole DLQ, filters aside.")
    max_msgs: int | None = Field(None, description="The DLQ's limit of entries (`dlq.max_msgs` as the stream has it); "
                                                   "null: unlimited.")
    full: bool = Field(False, description="`inDlq` reached `maxMsgs`: every new dead-lettering is refused and the "
                                          "ads it refuses wait queued (as `/v1/stats` `dlq.full`).")
    unreadable: list[dict[str, Any]] = Field(default_factory=list, description="`{seq, adId}` of each entry this page "
                                             "read that cannot be read as an entry (not in `items`; counted in "
                                             "`inDlq`); `gamead dlq purge ID` removes one. At most 100.")
    next_cursor: int | None = Field(None, description="Pass as `cursor` to read on; null at the end.")
    until_seq: int | None = Field(None, description="The page's fence: the highest DLQ sequence it may hold (the "
                                                    "query's `untilSeq`, else the DLQ's last when the read began). "
                                                    "Pass it back with `cursor` so that no later page shows an ad "
                                                    "again (an entry replayed and dead again meanwhile is past it).")
    scanned: int = Field(description="Entries this request read.")
    complete: bool = Field(description="False when the read stopped at `dlq.scan_limit` or `dlq.scan_time`.")
    stopped_at: str | None = Field(None, description="The setting whose bound stopped the read (`dlq.scan_limit` or "
                                   "`dlq.scan_time`); null when `complete`.")
    age_seconds: float = Field(0.0, description="Seconds since this answer was read: 0 for a read made for this "
                               "request (or shared with identical ones in flight); up to `dlq.watch_max_age` when a "
                               "watcher's request (`Cache-Control: max-age=N`, as `gamead top` sends) was given a "
                               "recent answer.")


class DryRun(_Doc):
    """A replay's or purge's ``dryRun: true``: what a job would act on now."""

    matched: int
    dry_run: bool
    complete: bool
    stopped_at: str | None = Field(None, description="The setting whose bound stopped the count (`dlq.scan_limit` or "
                                   "`dlq.scan_time`); null when `complete`.")
    scanned: int
    not_in_dlq: int | None = Field(None, description="Given ids with no entry in the DLQ (selection by ids).")
    not_in_dlq_ids: list[str] | None = Field(None, description="Those ids, in the order given (selection by ids).")


class ImportChecked(_Doc):
    """An import's ``dryRun: true``: every entry is valid."""

    valid: int
    dry_run: bool


class JobPage(_Doc):
    """``GET /v1/jobs``."""

    items: list[Job]
    count: int


class ScaleDocument(_Doc):
    """``GET /v1/scale``: backend, leader, current and desired workers, the override, the last decisions
    (:func:`gamead_core.scaling.status.status_document` writes every key; the CLI checks an answer against this)."""

    backend: str
    current: int | None = None
    desired: int | None = None
    stale: bool
    leader: dict[str, Any] | None = None
    override: dict[str, Any] | None = None
    decisions: list[dict[str, Any]] = Field(default_factory=list)
    applied_by: dict[str, Any] | None = Field(None, description="Who acts on the override: `by` (`leader`, "
                                              "`leader_failing`, `another_stack`, `advice_only`, `no_leader`), "
                                              "`leader`, `leaderIsThisNode`, `failed`, `error`, `text`.")


class OverrideSet(_Doc):
    """``POST /v1/scale/override``."""

    override: dict[str, Any]
    replaced: dict[str, Any] | None = Field(None, description="The override this one replaced (in force when it "
                                            "was written, as `override` is shown), or null: none stood.")
    effective_replicas: int = Field(description="The override clamped to the autoscaler's min and max.")
    note: str | None = Field(None, description="How the override was clamped to min/max replicas, or null.")
    applied_by: dict[str, Any] | None = Field(None, description="Who acts on it (as `status.appliedBy`).")
    status: ScaleDocument


class OverrideCleared(_Doc):
    """``DELETE /v1/scale/override``."""

    cleared: bool = Field(description="False if no override was set.")
    removed: dict[str, Any] | None = Field(None, description="The override this request removed, or null.")
    applied_by: dict[str, Any] | None = Field(None, description="Who acts on the change (as `status.appliedBy`).")
    status: ScaleDocument


class StatsQueue(_Doc):
    """``/v1/stats``' ``queue``: one item per priority level in ``levels``, and their sums."""

    levels: list[dict[str, Any]]


class StatsDocument(_Doc):
    """``GET /v1/stats`` (every figure is described in the README; :func:`gamead_core.stats.document.stats_document`
    writes every section; the CLI checks an answer against this)."""

    queue: StatsQueue
    rates: dict[str, Any]
    latency: dict[str, Any]
    dlq: dict[str, Any]
    nodes: dict[str, Any]
    errors: list[Any]
    history: dict[str, Any]


class WorkersDocument(_Doc):
    """``GET /v1/workers``: the registry's nodes."""

    items: list[dict[str, Any]] = Field(default_factory=list)


class Health(_Doc):
    """``GET /healthz``: ``ok``; 503 ``unhealthy`` with ``error`` (``nats_unreachable``)."""

    status: str
    nats: dict[str, Any] | None = None
    #: while NATS refuses the node's credentials for less than ``nats.refused_exit_after``: what it says of it
    refused: str | None = None
    error: dict[str, Any] | None = None


class Readiness(_Doc):
    """``GET /readyz``: ``ready`` / ``degraded`` (200) or ``unready`` (503, with ``error``: ``not_ready``)."""

    status: str
    checks: dict[str, str]
    repairs: list[Any] | None = None
    differs: list[str] | None = None
    error: dict[str, Any] | None = None


NDJSON_JOB = {"application/x-ndjson": {"schema": {"type": "string", "description": "One job document a line."}}}
