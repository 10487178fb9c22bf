"""``/ads``: submit an ad, read one, list a page."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gamead_core.api.auth import ANONYMOUS
from gamead_core.api.body import body_bytes, body_schema, parse_body
from gamead_core.api.contract import error_responses
from gamead_core.api.key_header import KeyHeader, QuotedKey, header_key
from gamead_core.api.records_gate import records_refusal, take_token
from gamead_core.api.responses import json_response as _json
from gamead_core.api.schemas import AdPage
from gamead_core.api.state import QueueLink
from gamead_core.errors import NotFound
from gamead_core.ids import (
    AD_CURSOR_MAX_LENGTH,
    AD_CURSOR_PATTERN,
    is_ad_id,
    normal_id,
)
from gamead_core.models import AdAccepted, AdRecord, AdStatus, AdSubmission, NewAd

router = APIRouter()

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = error_responses(400, 409, 422, 503)


def _link(request: Request) -> QueueLink:
    return request.app.state.link  # type: ignore[no-any-return]


async def submit(request: Request) -> Response:
    """The submit path, as a plain Starlette endpoint: the hot path skips FastAPI's dependency solving
    (about half of the API's CPU per request, measured with py-spy). It is mounted ahead of the router;
    the FastAPI route below documents it in OpenAPI."""
    idempotency_key = header_key(request.scope["headers"])  # plain or quoted (gamead_core.api.key_header)
    settings = request.app.state.settings
    ad = parse_body(await body_bytes(request), NewAd, settings.api.max_body_bytes)  # any Content-Type
    refusal = records_refusal(request.app)  # 503 records_full: the full record bucket would drop live ads' records
    # the rate-limit token, when the gate middleware left it to us (review31 R2): taken once the storage gate let
    # the submit through, or a repeat was answered; a refusal spends none (left39a). None when it took it itself
    # (the common case: no partial made, no call awaited per submit)
    left = request.scope.get("state", {}).get("rate_quota") is not None
    charge = functools.partial(take_token, request) if left else None
    if idempotency_key is None:
        if refusal is not None:
            raise refusal
        accepted = await _link(request).intake.submit(ad, charge=charge)
    else:  # a key is the caller's own: scoped to its token name (or the one anonymous scope)
        principal = request.scope.get("state", {}).get("principal", ANONYMOUS)
        legacy = idempotency_key.sent if isinstance(idempotency_key, QuotedKey) else None  # stored quoted before
        accepted = await _link(request).intake.submit(ad, idempotency_key, scope=principal.scope, legacy_key=legacy,
                                                      refuse=refusal, charge=charge)  # a repeat adds no record
    payload = {
        "id": accepted.id,
        "status": accepted.status.value,
        "priority": accepted.priority,
        "submittedAt": accepted.submitted,  # iso_z of the time, as the record has it (no AdRecord made: Accepted)
        "duplicate": accepted.duplicate,
    }
    return _json(payload, 202, {"Location": f"/ads/{accepted.id}"})


@router.post(
    "/ads",
    status_code=202,
    response_model=AdAccepted,
    summary="Submit an ad for analysis",
    responses=_ERROR_RESPONSES,
    openapi_extra=body_schema(AdSubmission),
)
async def submit_ad(
    request: Request,
    idempotency_key: KeyHeader = None,
) -> Response:
    """Queue an ad at its priority (1 most urgent … 5 least). Any Content-Type is accepted.

    `Idempotency-Key` (1-200 printable ASCII characters, no comma, no space at either end: else 400
    `invalid_idempotency_key`; bare, `k-1`, or the draft's Structured Field string, `"k-1"`: the same key) is
    scoped to the caller (its token, or every anonymous caller together) and bound to the ad: an exact repeat
    returns the first ad with `duplicate: true` and enqueues nothing; the same key with another ad gets 422
    `idempotency_key_reused`. A key is remembered as long as its ad's record (`records.*`), never less than
    `queue.duplicate_window`."""
    return await submit(request)


@router.get("/ads/{ad_id}", response_model=AdRecord, response_model_exclude_none=True,
            summary="One ad: status, and its analysis once completed",
            responses=error_responses(404, 409))
async def get_ad(ad_id: str, request: Request) -> Response:
    """Completed and failed records are read through the cache (``X-Cache: hit|miss``); others always
    from the store, so a cached answer never hides a newer status. A string that is not an ad id
    (``gamead_core.ids``) is 404 at once: it never reaches the cache, NATS or a KV key. An id in capitals is
    the same id (a ULID is case-insensitive): read as its lowercase form."""
    ad_id = normal_id(ad_id)
    if not is_ad_id(ad_id):
        raise NotFound(f"no ad with id {ad_id[:40]!r}: not an ad id")
    cache = request.app.state.cache
    cached = await cache.get(ad_id)
    if cached is not None:
        return Response(cached, media_type="application/json", headers={"X-Cache": "hit"})
    # no wait for a fresh ad: every 202 follows its record's acknowledged write (gamead_core.intake), and a
    # record that exists is never reported missing (AdStore.get asks the stream leader before NotFound)
    store = _link(request).store
    cache.follow(store)  # the deployment's keys in a shared Redis, its bucket's as it is (gamead_core.api.cache)
    record = (await store.get(ad_id)).record
    body = record.model_dump_json(exclude_none=True).encode()
    await cache.put(record, body)  # only completed/failed records are stored
    return Response(body, media_type="application/json", headers={"X-Cache": "miss"})


@router.get("/ads", summary="A page of ads, newest first", response_model=AdPage,
            responses=error_responses(422))
async def list_ads(
    request: Request,
    status: AdStatus | None = None,
    priority: Annotated[int | None, Query(ge=1, le=5)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(pattern=f"^{AD_CURSOR_PATTERN}$", max_length=AD_CURSOR_MAX_LENGTH,
                                        description="`nextCursor` of the previous page: read on after it.")] = None,
) -> Response:
    """Ads ordered by (`submittedAt`, `id`), newest first, a page at a time: pass a page's `nextCursor` as
    `cursor` (with the same filters) for the next; `nextCursor` is null on the last page. The cursor is the last
    ad's key, so an ad submitted meanwhile never appears on a later page and none is skipped or repeated
    (`gamead_core.store.listing`). A cursor that is not one is 422 `validation_failed`. The scan reads the
    newest `api.list_scan_limit` records: `scanned` says how many it read, `complete` whether that was all;
    records this gamead cannot read are skipped, counted in `unreadable` and named in `unreadableIds`. `offset`:
    the matching records before this page (newer than the cursor; 0 on the first page): it holds rows `offset + 1`
    to `offset + count` of `total`."""
    settings = request.app.state.settings
    async with request.app.state.scans.slot():  # 503 list_busy past api.list_scans (gamead_core.api.scan_gate)
        page = await _link(request).store.page(
            status=status, priority=priority, limit=limit, before=cursor, scan_limit=settings.api.list_scan_limit
        )
    items = [r.model_dump(mode="json", exclude_none=True) for r in page.records]
    return _json({"items": items, "count": len(items), "total": page.total, "offset": page.offset,
                  "nextCursor": page.next_cursor,
                  "scanned": page.scanned, "complete": page.complete, "unreadable": page.unreadable,
                  "unreadableIds": list(page.unreadable_ids)})
