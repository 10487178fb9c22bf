"""``/v1/dlq``: list, show, replay, purge and import dead-lettered ads (operator role)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from starlette.responses import Response, StreamingResponse

from gamead_core.api.body import body_schema, read_body
from gamead_core.api.errors import ApiError
from gamead_core.api.state import QueueLink
from gamead_core.dlq_ops import ReplayReport
from gamead_core.models import DlqEntry
from gamead_core.queue.dlq import DlqFilter

router = APIRouter(prefix="/v1/dlq", tags=["dlq"])

MAX_SELECTION = 100_000


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class FilterBody(_Body):
    error_class: str | None = None
    message: str | None = Field(None, description="Regex searched in the error message.")
    priority: int | None = Field(None, ge=1, le=5)
    since: datetime | None = None
    until: datetime | None = None


class Selection(_Body):
    """Exactly one of ``ids``, ``filter`` or ``all``."""

    ids: list[str] | None = Field(None, max_length=MAX_SELECTION)
    filter: FilterBody | None = None
    all: bool = False
    limit: int = Field(10_000, ge=1, le=MAX_SELECTION, description="Most entries one call acts on.")

    @model_validator(mode="after")
    def _one_selection(self) -> Selection:
        chosen = sum([self.ids is not None, self.filter is not None, self.all])
        if chosen != 1:
            raise ValueError("give exactly one of ids, filter or all")
        return self


class ReplayBody(Selection):
    dry_run: bool = False
    rate: float | None = Field(None, gt=0, description="Replays per second (default dlq.replay_rate).")
    stop_on_failure_rate: float | None = Field(None, ge=0, le=1)


class PurgeBody(Selection):
    confirm: bool = Field(False, description="Must be true: purging cannot be undone.")


class ImportBody(_Body):
    entries: list[DlqEntry] = Field(max_length=10_000)


def _link(request: Request) -> QueueLink:
    return request.app.state.link  # type: ignore[no-any-return]


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _entry(entry: DlqEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json", by_alias=True, exclude_none=True)


def make_filter(
    *, ids: list[str] | None = None, error_class: str | None = None, message: str | None = None,
    priority: int | None = None, since: datetime | None = None, until: datetime | None = None,
) -> DlqFilter:
    try:
        return DlqFilter(
            ids=frozenset(ids) if ids is not None else None, error_class=error_class, message=message,
            priority=priority, since=since, until=until,
        )
    except re.error as exc:
        raise ApiError(422, "validation_failed", f"message: not a valid regular expression: {exc}",
                       details=[{"loc": "message", "msg": str(exc)}]) from None


def _selection_filter(body: Selection) -> DlqFilter:
    if body.ids is not None:
        return make_filter(ids=body.ids)
    if body.filter is not None:
        return make_filter(**body.filter.model_dump())
    return DlqFilter()


@router.get("", summary="Dead-lettered ads, filtered; oldest first with a cursor, or newest first")
async def list_dlq(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[int, Query(ge=0, description="nextCursor of the previous page")] = 0,
    error_class: Annotated[str | None, Query(alias="errorClass")] = None,
    error_class_snake: Annotated[str | None, Query(alias="error_class", include_in_schema=False)] = None,
    message: Annotated[str | None, Query(description="regex on the error message")] = None,
    priority: Annotated[int | None, Query(ge=1, le=5)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    newest: bool = False,
) -> Response:
    flt = make_filter(error_class=error_class or error_class_snake, message=message, priority=priority,
                      since=since, until=until)
    page = await _link(request).dlq.page(flt, limit=limit, after=cursor, newest_first=newest)
    return _json({"items": [_entry(e) for e in page.items], "count": len(page.items), "total": page.total,
                  "nextCursor": page.next_cursor})


@router.get("/{ad_id}", summary="One dead-lettered ad")
async def get_dlq(ad_id: str, request: Request) -> Response:
    return _json(_entry(await _link(request).dlq.get(ad_id)))


@router.post("/replay", summary="Re-enqueue dead-lettered ads at their original priority",
             openapi_extra=body_schema(ReplayBody))
async def replay_dlq(request: Request) -> Response:
    """Replay by ids, filter or all; `dryRun`; a `rate` cap; `stopOnFailureRate`. With
    `Accept: application/x-ndjson` the answer streams progress lines, then `{"result": …}`."""
    body = await read_body(request, ReplayBody)
    link = _link(request)
    settings = request.app.state.settings
    entries = await link.ops.select(_selection_filter(body), body.limit)
    rate = body.rate or settings.dlq.replay_rate
    if "application/x-ndjson" not in request.headers.get("accept", ""):
        report = await link.ops.replay(
            entries, dry_run=body.dry_run, rate=rate, stop_on_failure_rate=body.stop_on_failure_rate
        )
        return _json(report.as_wire())

    async def lines() -> AsyncIterator[bytes]:
        queue: asyncio.Queue[ReplayReport | None] = asyncio.Queue()

        async def progress(report: ReplayReport) -> None:
            queue.put_nowait(report)

        task = asyncio.create_task(link.ops.replay(
            entries, dry_run=body.dry_run, rate=rate, stop_on_failure_rate=body.stop_on_failure_rate,
            progress=progress))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        yield orjson.dumps({"progress": 0, "matched": len(entries)}) + b"\n"
        while (item := await queue.get()) is not None:
            yield orjson.dumps({"progress": item.replayed + item.skipped, "matched": item.matched}) + b"\n"
        yield orjson.dumps({"result": task.result().as_wire()}) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.post("/purge", summary="Delete dead-lettered ads for good (needs confirm: true)",
             openapi_extra=body_schema(PurgeBody))
async def purge_dlq(request: Request) -> Response:
    body = await read_body(request, PurgeBody)
    link = _link(request)
    entries = await link.ops.select(_selection_filter(body), body.limit)
    if not body.confirm:
        raise ApiError(400, "confirmation_required",
                       f"purging {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} cannot be undone; "
                       "send confirm: true", details={"matched": len(entries)})
    purged = await link.ops.purge(entries)
    return _json({"matched": len(entries), "purged": purged})


@router.post("/import", summary="Put exported entries (JSONL from `gamead dlq export`) into the DLQ",
             openapi_extra=body_schema(ImportBody))
async def import_dlq(request: Request) -> Response:
    body = await read_body(request, ImportBody)
    imported, duplicates = await _link(request).ops.import_entries(body.entries)
    return _json({"imported": imported, "duplicates": duplicates})
