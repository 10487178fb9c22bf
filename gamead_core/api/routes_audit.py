"""``GET /v1/audit`` (the audit trail, newest first) and ``GET /v1/whoami`` (who the caller is and what it may
do: ``gamead top`` turns read-only for a viewer's token). Both are reads: viewers and operators
(:data:`gamead_core.api.auth.GRANTS`).

Every filter is checked before it is used: ``action`` and ``outcome`` are fixed lists, ``actor`` has the form of a
token's name, ``jobId`` the form of a job id (``gamead_core.ids``), times are ISO-8601 (``gamead_core.times``: no
offset = UTC). None of them becomes a NATS subject: records are read by sequence and matched in memory.
"""

from __future__ import annotations

import functools
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import Response

from gamead_core.api.auth import ANONYMOUS, auth_mode, auth_required
from gamead_core.api.errors import ValidationFailed
from gamead_core.api.responses import json_response
from gamead_core.api.shared_reads import max_age_of, shared_answer, watching
from gamead_core.audit.log import AuditLog
from gamead_core.audit.model import ACTOR_PATTERN, AuditAction, AuditFilter, AuditRecord, Outcome
from gamead_core.errors import QueueUnavailable
from gamead_core.ids import MAX_CURSOR, JobId
from gamead_core.times import UtcDatetime

router = APIRouter(tags=["audit"])

_WIRE = ConfigDict(alias_generator=AliasGenerator(alias=to_camel), populate_by_name=True)


class AuditPageDoc(BaseModel):
    """``GET /v1/audit``."""

    model_config = _WIRE

    items: list[AuditRecord]
    count: int
    next_cursor: int | None = Field(None, description="Pass as `cursor` for older records; null at the start.")
    scanned: int = Field(description="Records this request read.")
    complete: bool = Field(description="False when `audit.scan_limit` stopped the read early.")
    age_seconds: float = Field(0.0, description="Seconds since this answer was read: 0 for a read made for this "
                               "request (or shared with identical ones in flight); up to `dlq.watch_max_age` when a "
                               "watcher's request (`Cache-Control: max-age=N`, as `gamead top` sends) was given a "
                               "recent answer.")


class Whoami(BaseModel):
    """``GET /v1/whoami``: the caller, as the API sees it."""

    model_config = _WIRE

    name: str = Field(description="The token's name, or `anonymous`.")
    role: str | None = Field(None, description="submitter, viewer or operator; null without a token.")
    authenticated: bool
    auth_mode: str = Field(description="required | open | disabled (see the start-up log).")
    may_act: bool = Field(description="May this caller change things (replay, purge, import, scale…)?")


_json = functools.partial(json_response, no_store=True)  #: live data: never cached


def _audit(request: Request) -> AuditLog:
    audit = getattr(request.app.state, "audit", None)
    if audit is None:
        raise QueueUnavailable("the audit trail is not running on this API node")
    return audit  # type: ignore[no-any-return]


@router.get("/v1/audit", summary="The audit trail: operator actions, newest first", response_model=AuditPageDoc,
            response_model_exclude_none=True)
async def list_audit(
    request: Request,
    actor: Annotated[str | None, Query(pattern=ACTOR_PATTERN, description="Only this token name (or "
                                                                          "`anonymous`).")] = None,
    action: Annotated[AuditAction | None, Query(description="Only this action.")] = None,
    outcome: Annotated[Outcome | None, Query(description="Only this outcome.")] = None,
    job_id: Annotated[JobId | None, Query(alias="jobId", description="Only the records of this job.")] = None,
    since: Annotated[UtcDatetime | None, Query(description="At or after (ISO 8601; no offset = UTC).")] = None,
    until: Annotated[UtcDatetime | None, Query(description="Before (ISO 8601; no offset = UTC).")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[int, Query(ge=0, le=MAX_CURSOR, description="`nextCursor` of the previous page.")] = 0,
) -> Response:
    """`{items, count, nextCursor, scanned, complete}`. Each record: `at`, `actor`, `role`, `client`, `action`,
    `outcome` (`accepted`, `refused` with `code`, `failed`, or a job's end: `succeeded`, `cancelled`…),
    `selection`, `ads`, `counts`, `jobId`, `requestId`."""
    ValidationFailed.unless_window(since, until)
    flt = AuditFilter(actor=actor, action=action.value if action else None, outcome=outcome, job_id=job_id,
                      since=since, until=until)

    watcher = watching(request)  # a dashboard's or a viewer's read: capacity of its own, never an operator's
    gate = request.app.state.audit_watch_scans if watcher else request.app.state.audit_scans

    async def read() -> bytes:
        async with gate.slot():  # 503 list_busy past audit.scans / audit.watch_scans (attack39a F1)
            page = await _audit(request).page(flt, limit=limit, before=cursor)
        return orjson.dumps(page.wire())

    # identical concurrent reads share one; a watcher's (gamead top's panel) may be a cached one (attack37 F1)
    accept = max_age_of(request.headers.get("cache-control")) if watcher else 0
    body, age = await request.app.state.audit_reads.read(("audit", watcher, flt, limit, cursor), read,
                                                         accept_age=accept)
    return shared_answer(body, age)


@router.get("/v1/whoami", summary="Who the caller is and whether it may act", response_model=Whoami)
async def whoami(request: Request) -> Response:
    settings = request.app.state.settings
    principal = getattr(request.state, "principal", ANONYMOUS)
    may_act = principal.may("POST", "v1") if auth_required(settings) else True
    return _json({"name": principal.name, "role": principal.role, "authenticated": principal.authenticated,
                  "authMode": auth_mode(settings)["auth_mode"], "mayAct": may_act})
