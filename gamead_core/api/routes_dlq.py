"""``/v1/dlq``: list and show dead-lettered ads; replay, purge and import them as server-side jobs
(operator role).

Every id a client sends is checked by ``gamead_core.ids`` before anything reaches NATS (404 ``not_found`` in a
path, 422 ``validation_failed`` in a body or query); times follow ``gamead_core.times`` (no offset = UTC);
``message`` filters are RE2 patterns (linear time; one RE2 cannot compile is 422). A list or dry run reads at
most ``dlq.scan_limit`` entries and ``dlq.scan_time`` seconds and says when it stopped early.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from starlette.responses import Response

from gamead_core.api.body import body_schema, read_body
from gamead_core.api.body_caps import MAX_IDS
from gamead_core.api.contract import error_responses
from gamead_core.api.dlq_import import ImportedEntry
from gamead_core.api.errors import ConfirmationRequired, DuplicateQueryParameter, ValidationFailed
from gamead_core.api.job_answers import job_response, jobs_of as _jobs
from gamead_core.api.responses import json_response as _json
from gamead_core.api.schemas import NDJSON_JOB, DlqPage, DryRun, ImportChecked
from gamead_core.api.shared_reads import max_age_of, shared_answer, watching
from gamead_core.api.state import QueueLink
from gamead_core.audit import not_an_action
from gamead_core.errors import NotFound
from gamead_core.json_keys import one_name_per_field
from gamead_core.ids import MAX_CURSOR, AdId, is_ad_id, normal_id
from gamead_core.jobs.model import Job, JobKind, Selection
from gamead_core.models import DlqEntry
from gamead_core.queue.dlq import MAX_PATTERN, DlqFilter, ScanBudget
from gamead_core.dlq_pattern import MAX_ERROR_CLASS, MAX_REPLAY_RATE, filter_refusal
from gamead_core.times import UtcDatetime

router = APIRouter(prefix="/v1/dlq", tags=["dlq"])

MAX_SELECTION = 100_000  #: most entries one job acts on (a filter or all; ids: body_caps.MAX_IDS)
MAX_TEXT = MAX_ERROR_CLASS  #: the longest errorClass filter (gamead_core.dlq_pattern)


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _one_name_per_field(cls, data: Any) -> Any:  # a nested filter too: json_keys.one_name_per_field
        return one_name_per_field(cls, data)


class FilterBody(_Body):
    error_class: str | None = Field(None, max_length=MAX_TEXT)
    message: str | None = Field(None, max_length=MAX_PATTERN, description="RE2 regex searched in the error message.")
    priority: int | None = Field(None, ge=1, le=5)
    since: UtcDatetime | None = Field(None, description="Dead at or after (ISO 8601; no offset = UTC).")
    until: UtcDatetime | None = Field(None, description="Dead before (ISO 8601; no offset = UTC).")


class SelectionBody(_Body):
    """Exactly one of ``ids``, ``filter`` or ``all``."""

    ids: list[AdId] | None = Field(None, max_length=MAX_IDS)  # its body always fits: api.body_caps
    filter: FilterBody | None = None
    all: bool = False
    limit: int = Field(10_000, ge=1, le=MAX_SELECTION, description="Most entries one job acts on.")

    @model_validator(mode="after")
    def _one_selection(self) -> SelectionBody:
        chosen = sum([self.ids is not None, self.filter is not None, self.all])
        if chosen != 1:
            raise ValueError("give exactly one of ids, filter or all")
        return self


class ReplayBody(SelectionBody):
    dry_run: bool = Field(False, description="Only count what would be replayed (answered at once).")
    rate: float | None = Field(None, gt=0, le=MAX_REPLAY_RATE, description="Replays per second (default dlq.replay_rate).")
    stop_on_failure_rate: float | None = Field(None, ge=0, le=1)


class PurgeBody(SelectionBody):
    confirm: bool = Field(False, description="Must be true: purging cannot be undone.")
    dry_run: bool = Field(False, description="Only count what would be purged (answered at once).")


class ImportBody(_Body):
    entries: list[ImportedEntry] = Field(max_length=10_000)
    dry_run: bool = Field(False, description="Only validate the entries (answered at once).")


def _link(request: Request) -> QueueLink:
    return request.app.state.link  # type: ignore[no-any-return]


def _principal(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    return str(getattr(principal, "name", None) or "anonymous")


def _entry(entry: DlqEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json", by_alias=True, exclude_none=True)


def _budget(request: Request) -> ScanBudget:
    ds = request.app.state.settings.dlq
    return ScanBudget(entries=ds.scan_limit, seconds=ds.scan_time)


def stopped_at(budget: ScanBudget) -> str | None:
    """The setting whose bound stopped ``budget``'s read, None if none did: ``stoppedAt`` (attack38b F7). Pure."""
    return {"entries": "dlq.scan_limit", "seconds": "dlq.scan_time"}.get(budget.stopped_by or "")


def make_filter(*, error_class: str | None = None, message: str | None = None, priority: int | None = None,
                since: Any = None, until: Any = None) -> DlqFilter:
    """A :class:`DlqFilter`, or 422 ``validation_failed`` naming ``message`` if RE2 cannot compile it, ``since``
    if it is not before ``until`` (an empty window), or ``errorClass``/``message`` holding a control character
    (:func:`gamead_core.safe_text.refused_char`)."""
    ValidationFailed.unless_window(since, until)
    for loc, text in (("errorClass", error_class), ("message", message)):  # kept in a job, shown back to operators
        if (msg := filter_refusal(loc, text)) is not None:  # the CLI's rule too (exit 2 before any request)
            raise ValidationFailed(f"{loc}: {msg}", details=[{"loc": loc, "msg": msg, "type": "value_error"}])
    try:
        return DlqFilter(error_class=error_class, message=message, priority=priority, since=since, until=until)
    except ValueError as exc:
        raise ValidationFailed(f"message: {exc}",
                               details=[{"loc": "message", "msg": str(exc), "type": "regex"}]) from None


def _selection_filter(body: SelectionBody) -> DlqFilter:
    """The filter of a job's selection (``DlqFilter()`` for ids or all); 422 as :func:`make_filter`, and for a
    ``filter`` that narrows nothing (``{}``): it acted on every entry without ``all`` (attack60)."""
    if body.filter is None:
        return DlqFilter()
    flt = make_filter(**body.filter.model_dump())
    if not flt.active:
        msg = "narrows nothing: give at least one of its fields, or all: true to act on every entry"
        raise ValidationFailed(f"filter: {msg}", details=[{"loc": "filter", "msg": msg, "type": "value_error"}])
    return flt


async def _selection(request: Request, body: SelectionBody) -> Selection:
    flt = _selection_filter(body)  # 422 before anything is stored
    _jobs(request).room()  # 503 jobs_busy before any read for it: jobs.max_running (attack34a F2)
    fence = await _link(request).dlq.last_seq()
    if body.ids is not None:
        return Selection(mode="ids", ids=len(body.ids), fence=fence, limit=body.limit)
    if body.filter is not None:
        return Selection(mode="filter", filter=flt.wire(), fence=fence, limit=body.limit)
    return Selection(mode="all", fence=fence, limit=body.limit)


async def _count(request: Request, body: SelectionBody) -> dict[str, Any]:
    """How many entries a job with this selection would act on now (a bounded read): ``{matched, dryRun,
    complete, scanned, pastLimit}`` (``pastLimit``: more than ``limit`` match, the job would leave the rest; +
    ``notInDlq`` and ``notInDlqIds`` for ids: how many, and which, have no entry)."""
    link = _link(request)
    flt = _selection_filter(body)
    fence = await link.dlq.last_seq()
    if body.ids is not None:
        items, missing = await link.ops.resolve_ids(body.ids[: body.limit], fence=fence)
        return {"matched": len(items), "notInDlq": len(missing), "notInDlqIds": missing, "dryRun": True,
                "complete": True, "scanned": len(items) + len(missing)}
    async with request.app.state.dlq_scans.slot():  # 503 list_busy past dlq.scans
        # its dlq.scan_time starts once it reads, not while it waits for a slot (attack35 F2: a count that waited
        # behind other jobs' scans read 2 of 196 entries and blamed dlq.scan_limit / dlq.scan_time)
        budget = _budget(request)
        items = await link.ops.select(flt, fence=fence, limit=body.limit + 1, budget=budget)  # one past: said
    return {"matched": min(len(items), body.limit), "dryRun": True, "complete": not budget.exhausted,
            "stoppedAt": stopped_at(budget), "scanned": budget.scanned, "pastLimit": len(items) > body.limit}


def _id_items(body: SelectionBody) -> list[list[Any]] | None:
    """The work list a job over ``ids`` starts from: each id once, at most ``limit``; the job's first phase
    looks up their current entries."""
    if body.ids is None:
        return None
    return [[ad_id, None] for ad_id in dict.fromkeys(body.ids[: body.limit])]


#: the answers of a route that starts a job: 202 with the job; with ``Accept: application/x-ndjson``, 200 and
#: the job's progress stream
_JOB_STARTED: dict[int | str, dict[str, Any]] = {
    202: {"description": "The job was created and runs on the server (`Location: /v1/jobs/{id}`)."},
}


def _dry_run_or_stream(model: type, what: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "content": NDJSON_JOB,
                  "description": f"`dryRun: true`: {what} (JSON); or, with `Accept: application/x-ndjson`, the "
                                 "created job's progress stream: its document, then a line each time it changes"}}


@router.get("", summary="Dead-lettered ads, filtered; oldest first with a cursor, or newest first",
            response_model=DlqPage)
async def list_dlq(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[int, Query(ge=0, le=MAX_CURSOR, description="nextCursor of the previous page")] = 0,
    error_class: Annotated[str | None, Query(alias="errorClass", max_length=MAX_TEXT)] = None,
    error_class_snake: Annotated[str | None, Query(alias="error_class", include_in_schema=False,
                                                   max_length=MAX_TEXT)] = None,
    message: Annotated[str | None, Query(max_length=MAX_PATTERN, description="RE2 regex on the error message")] = None,
    priority: Annotated[int | None, Query(ge=1, le=5)] = None,
    since: Annotated[UtcDatetime | None, Query(description="dead at or after (no offset = UTC)")] = None,
    until: Annotated[UtcDatetime | None, Query(description="dead before (no offset = UTC)")] = None,
    newest: bool = False,
    until_seq: Annotated[int | None, Query(alias="untilSeq", ge=0, le=MAX_CURSOR,
                                           description="the listing's fence: only entries at or below this DLQ "
                                                       "sequence (the first page's `untilSeq`)")] = None,
    count: Annotated[bool, Query(description="false: `total` is not counted (null), the read stops one entry "
                                             "past the page (a reader of every page, as `dlq export`)")] = True,
) -> Response:
    """`{items, count, total, inDlq, maxMsgs, full, nextCursor, untilSeq, scanned, complete, unreadable}`:
    `unreadable` names the entries this page read that cannot be read as entries (`{seq, adId}`: counted in `inDlq`
    and an unfiltered `total`; `gamead dlq purge ID` removes one: attack31b F3). `total` counts the entries matching
    the filters (every page; null with `count=false`), `inDlq` every entry (`full`: at `maxMsgs`, tui42 F4);
    `complete` is false when the read stopped at `dlq.scan_limit` or `dlq.scan_time`, `nextCursor` going on from
    there. `untilSeq`: the page's fence (the query's, else the DLQ's last sequence when the read began): pages asked
    with the first page's `untilSeq` never show an ad twice, even while a replay re-dead-letters ads (attack27 F5)."""
    DuplicateQueryParameter.unless_one_of(errorClass=error_class, error_class=error_class_snake)  # attack42a F2
    flt = make_filter(error_class=error_class_snake if error_class is None else error_class, message=message,
                      priority=priority, since=since, until=until)
    watcher = watching(request)  # a dashboard's read: capacity of its own (attack37 F1), never an operator's
    gate = request.app.state.dlq_watch_scans if watcher else request.app.state.dlq_scans

    async def read() -> bytes:
        async with gate.slot():  # 503 list_busy past dlq.scans / dlq.watch_scans (a consumer each on nats-server)
            budget = _budget(request)
            page = await _link(request).dlq.page(flt, limit=limit, after=cursor, up_to=until_seq, newest_first=newest,
                                                 budget=budget, count=count)
        return orjson.dumps({"items": [_entry(e) for e in page.items], "count": len(page.items),
                             "total": page.total, "offset": page.offset, "inDlq": page.in_dlq, "untilSeq": page.fence,
                             "nextCursor": page.next_cursor, "scanned": page.scanned, "complete": page.complete,
                             "stoppedAt": stopped_at(budget), "maxMsgs": page.max_msgs, "full": page.full,
                             "unreadable": [{"seq": seq, "adId": ad_id} for seq, ad_id in page.unreadable]})

    key = ("dlq", watcher, flt, limit, cursor, until_seq, newest, count)  # identical concurrent reads: one scan
    body, age = await request.app.state.dlq_reads.read(
        key, read, accept_age=max_age_of(request.headers.get("cache-control")) if watcher else 0)
    return shared_answer(body, age)


@router.get("/{ad_id}", summary="One dead-lettered ad", response_model=DlqEntry, response_model_exclude_none=True,
            responses=error_responses(404))
async def get_dlq(ad_id: str, request: Request) -> Response:
    ad_id = normal_id(ad_id)  # a ULID in capitals is the same id
    if not is_ad_id(ad_id):
        raise NotFound(f"no dead-lettered ad with id {ad_id[:40]!r}: not an ad id")
    return _json(_entry(await _link(request).dlq.get(ad_id)))


@router.post("/replay", status_code=202, summary="Replay dead-lettered ads: starts a job (202 with its document)",
             openapi_extra=body_schema(ReplayBody), response_model=Job,
             responses={**_JOB_STARTED, **_dry_run_or_stream(DryRun, "what would be replayed now"),
                        **error_responses(400, 422)})
async def replay_dlq(request: Request) -> Response:
    """Replay by `ids`, `filter` or `all` at their original priority, at most `rate` per second, stopping if
    more than `stopOnFailureRate` of the replayed ads that finished died again. Answers `202` with the job
    (`Location: /v1/jobs/{id}`; with `Accept: application/x-ndjson`, its progress stream). `dryRun` answers
    at once with `{matched}`."""
    body = await read_body(request, ReplayBody)
    if body.dry_run:
        not_an_action()  # changes nothing: no audit record
        return _json(await _count(request, body))
    selection = await _selection(request, body)
    job = await _jobs(request).create(
        JobKind.REPLAY, selection, started_by=_principal(request),
        rate=body.rate or request.app.state.settings.dlq.replay_rate,
        stop_on_failure_rate=body.stop_on_failure_rate,
        items=_id_items(body),
    )
    return job_response(request, job)


@router.post("/purge", status_code=202, summary="Delete dead-lettered ads for good: starts a job (needs confirm)",
             openapi_extra=body_schema(PurgeBody), response_model=Job,
             responses={**_JOB_STARTED, **_dry_run_or_stream(DryRun, "what would be purged now"),
                        **error_responses(400, 422)})
async def purge_dlq(request: Request) -> Response:
    """Purged ads leave the DLQ; their records become `failed` (kept, never retried). Without `confirm: true`:
    400 `confirmation_required` with the number matched. `dryRun` answers at once with `{matched}`."""
    body = await read_body(request, PurgeBody)
    if body.dry_run:
        not_an_action()  # changes nothing: no audit record
        return _json(await _count(request, body))
    if not body.confirm:
        matched = (await _count(request, body))["matched"]
        raise ConfirmationRequired(
            f"purging {matched} entr{'y' if matched == 1 else 'ies'} cannot be undone; send confirm: true",
            details={"matched": matched})
    selection = await _selection(request, body)
    job = await _jobs(request).create(
        JobKind.PURGE, selection, started_by=_principal(request),
        items=_id_items(body),
    )
    return job_response(request, job)


@router.post("/import", status_code=202, summary="Put exported entries into the DLQ: starts a job",
             openapi_extra=body_schema(ImportBody), response_model=Job,
             responses={**_JOB_STARTED, **_dry_run_or_stream(ImportChecked, "every entry is valid"),
                        **error_responses(400, 422)})
async def import_dlq(request: Request) -> Response:
    """`{entries: [...]}` from `gamead dlq export`. Every entry is validated before anything is written (422
    names the entry's index and field). An ad that exists here and is not dead (alive, or purged) is skipped."""
    body = await read_body(request, ImportBody)
    seen: dict[str, int] = {}
    for n, entry in enumerate(body.entries):
        if entry.ad_id in seen:
            loc = f"entries.{n}.adId"
            msg = f"the same ad as entries.{seen[entry.ad_id]}: one entry per ad"
            raise ValidationFailed(f"the request is invalid: {loc}: {msg}",
                                   details=[{"loc": loc, "msg": msg, "type": "duplicate"}])
        seen[entry.ad_id] = n
    if body.dry_run:
        not_an_action()  # changes nothing: no audit record
        return _json({"valid": len(body.entries), "dryRun": True})
    items = [e.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"seq"}) for e in body.entries]
    job = await _jobs(request).create(JobKind.IMPORT, Selection(mode="entries"), started_by=_principal(request),
                                      items=items)
    return job_response(request, job)
