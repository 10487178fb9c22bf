"""``POST /ads/batch``: many ads in one request, their publishes pipelined, one result per ad in order.

Each ad goes through the very path of ``POST /ads`` (:meth:`gamead_core.intake.Intake.submit_many`: create the
record, then publish the message naming its revision, each acknowledged), all of them at once: the creates leave
together, then the publishes, and their acks are gathered, so a batch of N costs about two round trips instead of
2N. An item is reported ``queued`` only once JetStream acknowledged its message: a result with an ``id`` is a 202
that is never lost. An item that fails (invalid, a reused idempotency key, NATS refusing it) gets the JSON error the
single route would have answered, in its place; the others are not affected.

Validation: the whole body is first checked by one pydantic-core call (:func:`validated`: JSON parsing and every ad's
strict validation in Rust, no Python object per item but the ads themselves, and an (ad, key) pair per item only when
the body spells ``idempotencyKey``); only when that fails is the body read again item by item (:func:`parse_batch`,
:func:`parse_item`), so a bad ad still gets exactly its own error and the others go through. Both paths accept the same
ads and refuse the same requests (``tests/integration/test_batch_fast.py``). An ad naming a key twice gets its own
``invalid_json``, the outer object naming one twice is a 400 ``invalid_json`` (:func:`repeated`; I-JSON, RFC 7493
§2.3); an ad naming a field both ways (``targetAudience``, ``target_audience``) its own ``ambiguous_field``.
An ``Idempotency-Key`` header gives each ad without its own key ``<header>-<index>`` (:mod:`.batch_keys`), so a
resent batch queues nothing twice; keyed ads go the keyed path of ``POST /ads``, 25 at a time (:mod:`.batch_keyed`). The shapes OpenAPI shows are in :mod:`.batch_models`.

Limits: at most ``api.batch_max`` ads (more → 422 ``batch_too_large``), a body of at most
``api.batch_max_body_bytes`` (→ 413). Rate limits count **per ad**, from the caller's ``POST /ads`` bucket
(:mod:`gamead_core.api.quota`): the ads beyond the tokens left get ``rate_limited`` in their place; if no
token is left the whole request is 429. If every ad that was tried failed because NATS is away, the whole
request is 503 (retry it as it is).
"""

from __future__ import annotations

import asyncio
import math
import operator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.responses import Response

from gamead_core.api.auth import ANONYMOUS
from gamead_core.api.batch_answer import answer_bytes, error, error_of, result_of
from gamead_core.api.batch_gate import batch_turn
from gamead_core.api.batch_keyed import at_most, both, keyed_bytes, unexpected
from gamead_core.api.batch_keys import check_collisions, check_derivable, derived
from gamead_core.api.batch_models import AdBatch, AdBatchResult
from gamead_core.api.body import body_bytes, body_schema, not_json, refuse_repeats, spelled_twice_error
from gamead_core.api.contract import error_responses
from gamead_core.api.errors import (
    BatchTooLarge,
    InvalidJson,
    PayloadTooLarge,
    ValidationFailed,
    validation_failure,
)
from gamead_core.api.key_header import KeyHeader, header_key
from gamead_core.api.quota import RateQuota
from gamead_core.api.records_gate import RecordsFull, records_refusal
from gamead_core.api.storage_gate import StorageFailing, batch_tokens
from gamead_core.api.unknown_keys import trimmed
from gamead_core.api.responses import JsonResponse
from gamead_core.errors import GameadError, MaybeQueued, OutboundFull, QueueFull, QueueUnavailable
from gamead_core.ids import IDEMPOTENCY_KEY_PATTERN, INVALID_KEY_CODE, MAX_IDEMPOTENCY_KEY, idempotency_key_problem
from gamead_core.intake import Accepted, Queued, keyed_ad_id
from gamead_core.json_keys import has_repeat, key_names, may_repeat, repeat_details, repeat_message, repeats
from gamead_core.models import AdSubmission, NewAd
from gamead_core.queue.liveness import unsent_bytes

router = APIRouter()

#: the one field a batch item may carry besides the ad's own
KEY_FIELD = "idempotencyKey"


def parse_item(item: Any) -> tuple[AdSubmission, str | None] | dict[str, Any]:
    """One decoded item → (the ad, its idempotency key or None), or its error (``validation_failed``, or
    ``ambiguous_field``: a field under both its names). Pure. Validated as ``POST /ads`` validates its body."""
    if not isinstance(item, dict):
        return error("validation_failed", "an item must be a JSON object (an ad)",
                      [{"loc": "(item)", "msg": f"got {type(item).__name__}", "type": "model_type"}])
    if (twice := spelled_twice_error(item, AdSubmission, "the ad")) is not None:
        return error_of(twice)
    key = item.get(KEY_FIELD)
    if KEY_FIELD in item:
        problem = (idempotency_key_problem(key) if isinstance(key, str)
                   else f"an idempotency key is a string, not {type(key).__name__}")
        if problem is not None:  # the header's rule and code (gamead_core.ids), so a key works on both paths
            return error(INVALID_KEY_CODE, f"{KEY_FIELD}: {problem}", {"field": KEY_FIELD})
        item = {k: v for k, v in item.items() if k != KEY_FIELD}
    item, omitted = trimmed(item, NewAd)  # 150,000 unknown keys: validated as 5, the rest counted
    try:
        return NewAd.model_validate(item, strict=True), key
    except ValidationError as exc:
        message, details = validation_failure(list(exc.errors(include_url=False)), omitted)
        return error("validation_failed", message, details)


class _AllValid(BaseModel):
    """A batch body whose every item is a valid ad without an idempotency key: what :func:`validated` accepts."""

    model_config = ConfigDict(extra="forbid")

    ads: list[NewAd] = Field(min_length=1)


class _KeyedItem(BaseModel):
    """One item of a batch that carries keys: the ad, and its ``idempotencyKey``."""

    ad: NewAd
    #: "" when the item has no key (a default is not validated; a key sent as "" or null is refused)
    key: str = Field("", min_length=1, max_length=MAX_IDEMPOTENCY_KEY, pattern=IDEMPOTENCY_KEY_PATTERN)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, value: Any) -> dict[str, Any]:
        """The item as sent → ``{"ad": the item without its key, "key": the key}``: anything that is not a valid
        ad (a non-object, an unknown field, a bad key) still fails, and sends the batch to the per-item reading."""
        if isinstance(value, dict) and KEY_FIELD in value:
            rest = dict(value)
            return {"ad": rest, "key": rest.pop(KEY_FIELD)}
        return {"ad": value}


class _AllValidKeyed(BaseModel):
    """A batch body whose every item is a valid ad, some with ``idempotencyKey``."""

    model_config = ConfigDict(extra="forbid")

    ads: list[_KeyedItem] = Field(min_length=1)


_ALL_VALID = _AllValid.__pydantic_validator__
_ALL_VALID_KEYED = _AllValidKeyed.__pydantic_validator__
_KEY_BYTES = b'"' + KEY_FIELD.encode() + b'"'
#: every key a batch body the fast path accepts may hold (quoted), for :func:`may_repeat`
_NAMES = (*(key_names(AdSubmission) or ()), _KEY_BYTES, b'"ads"')
_FIELDS_SET = operator.attrgetter("__pydantic_fields_set__")  # the keys an ad was read from (no model validator)


def repeated(body: bytes, held: int) -> dict[int, dict[str, Any]]:
    """The items of a batch body (JSON text read as ``{"ads": [...]}``) holding an object that names a key twice:
    index → its ``invalid_json`` error naming the first such key (parsers disagree on which value counts); ``{}``
    at once when :func:`may_repeat` rules any out (``held``: keys the parsed body surely holds; a byte count),
    else exact. Raises 400 ``invalid_json`` when the outer object names a key twice (``"ads"``)."""
    if not may_repeat(body, _NAMES, held) or not has_repeat(body):
        return {}
    found: dict[int, dict[str, Any]] = {}
    for rep in repeats(body.decode("utf-8", "replace")):
        if len(rep.path) < 2 or rep.path[0] != "ads" or not isinstance(rep.path[1], int):
            refuse_repeats(body)  # not inside an item of the ads array (e.g. "ads" an object, then again): 400
        found.setdefault(rep.path[1], error("invalid_json", f"the ad is not valid JSON for this API: "
                                                 f"{repeat_message(rep)}", repeat_details(rep)))
    return found


def _check_size(body: bytes, max_bytes: int) -> None:
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"the body is {len(body):,} bytes; the limit is {max_bytes:,} (api.batch_max_body_bytes)")


def validated(body: bytes, batch_max: int, max_bytes: int) -> tuple[list[AdSubmission], list[str | None] | None] | None:
    """The ads of a batch body (1 … ``batch_max`` of them, in order) and their idempotency keys, when the body is a
    JSON object ``{"ads": [...]}`` and every item is a valid ad (with a valid ``idempotencyKey`` or none), checked
    by one pydantic-core call (strict, on the JSON text, as ``POST /ads`` validates its body). Returns ``(ads,
    None)`` when no item can carry a key (the body never spells ``"idempotencyKey"``: no object per item but the
    ad), else ``(ads, keys)`` with ``keys[i]`` the key of ``ads[i]`` or None; None when any item is refused:
    then read the body with :func:`parse_batch` and :func:`parse_item`, which say what is wrong and where
    (also when an ad names a key twice, :func:`repeated`).
    Raises 413 ``payload_too_large`` (over ``max_bytes``, checked first) and 422 ``batch_too_large`` (more than
    ``batch_max`` ads), as :func:`parse_batch` does."""
    _check_size(body, max_bytes)
    keys: list[str | None] | None = None
    try:
        if _KEY_BYTES in body:  # perhaps keyed (or the word is in a text): items split into (ad, key)
            items: list[_KeyedItem] = _ALL_VALID_KEYED.validate_json(body, strict=True).ads
            ads = [item.ad for item in items]
            keys = [item.key or None for item in items]
        else:
            ads = _ALL_VALID.validate_json(body, strict=True).ads
    except ValidationError:
        return None
    if len(ads) > batch_max:
        raise _too_many(len(ads), batch_max)
    held = 1 + sum(map(len, map(_FIELDS_SET, ads))) + (len(keys) - keys.count(None) if keys else 0)
    return None if repeated(body, held) else (ads, keys)  # an item naming a key twice: read item by item


def parse_batch(body: bytes, batch_max: int, max_bytes: int) -> list[Any]:
    """The raw items of a batch body. Raises :class:`ApiError`: 413 ``payload_too_large``, 400 ``invalid_json``
    (not JSON, or not an object), 422 ``validation_failed`` (no ``ads`` list, or an empty one), 422
    ``batch_too_large`` (more than ``batch_max`` items). Items are validated one by one later."""
    _check_size(body, max_bytes)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise not_json(body, exc) from None  # one message for a body that is not UTF-8 (as POST /ads)
    if not isinstance(data, dict):
        raise InvalidJson('the body must be a JSON object: {"ads": [...]}')
    unknown = sorted(k for k in data if k != "ads")
    ads = data.get("ads")
    if unknown or not isinstance(ads, list) or not ads:
        loc = unknown[0] if unknown else "ads"
        msg = f"unknown field {loc!r}" if unknown else "must be a non-empty list of ads"
        raise ValidationFailed(f"the request is invalid: {loc}: {msg}",
                               details=[{"loc": loc, "msg": msg, "type": "extra_forbidden" if unknown else "list_type"}])
    if len(ads) > batch_max:
        raise _too_many(len(ads), batch_max)
    return ads


def check_room(unsent: int, body: int, limit: int, extra: int = 0) -> None:
    """Refuse a batch whose writes would take the bytes waiting to be sent to NATS over ``limit``
    (``nats.max_pending_bytes``), before any is sent: ``unsent`` bytes wait already; the batch sends each ad
    twice (its record, then its message, each at least the ad's JSON), so ``2 × (body + extra)`` bytes, ``extra``
    the bytes its keyed ads' records add to their ads (:func:`.batch_keyed.keyed_bytes`). Pure. Raises
    :class:`OutboundFull` (503 ``queue_unavailable``, ``Retry-After``); the message says when the batch alone is
    over the bound (then only smaller parts can pass)."""
    needed = 2 * (body + extra)
    if unsent + needed <= limit:
        return
    alone = ("; this batch alone is over it: send it in smaller parts" if needed > limit
             else "; retry after the time in Retry-After")
    raise OutboundFull(f"NATS is not taking this batch: {unsent:,} bytes wait to be sent and the batch would add "
                       f"~{needed:,} (its records and messages), over nats.max_pending_bytes = {limit:,}{alone}",
                       details={"unsentBytes": unsent, "writeBytes": needed, "maxPendingBytes": limit})


def _too_many(count: int, batch_max: int) -> BatchTooLarge:
    return BatchTooLarge(f"the batch holds {count} ads; the most is {batch_max} (api.batch_max): send it in parts",
                         details={"count": count, "max": batch_max})


async def submit_batch(request: Request) -> Response:
    """The batch route as a plain Starlette endpoint (as ``POST /ads``), in turns once read (:mod:`.batch_gate`)."""
    key = header_key(request.scope["headers"])  # the ads' keys derive from it (gamead_core.api.batch_keys)
    body = await body_bytes(request)
    async with batch_turn(request.app):
        return await _submit(request, body, key)


async def _submit(request: Request, body: bytes, header: str | None) -> Response:
    settings = request.app.state.settings
    batch_max, max_bytes = settings.api.batch_max, settings.api.batch_max_body_bytes
    checked = validated(body, batch_max, max_bytes)  # one pydantic-core call when every ad is valid
    ads, keys = checked if checked is not None else (None, None)
    raw: list[Any] = ads if ads is not None else parse_batch(body, batch_max, max_bytes)
    twice = {} if ads is not None else repeated(body, 1 + sum(len(i) for i in raw if isinstance(i, dict)))
    check_derivable(header, len(raw))  # 400 before any token is taken or anything queued
    pairs: list[Any] | None = None  # per item: (ad, its own key or None), or its error; None: one pipeline
    if ads is None:
        pairs = [twice.get(i, r) if isinstance(r, tuple) else r for i, r in enumerate(map(parse_item, raw))]
    elif keys is not None or header is not None:  # all valid, some keyed (or all, by the header)
        pairs = list(zip(ads, keys or [None] * len(ads)))
    if pairs is not None:
        check_collisions(pairs, header)  # an own key that is another item's K-<n>: 400, before any token
    refusal = records_refusal(request.app)  # 503 records_full for the whole batch, before any token is taken, but
    if refusal is not None and (pairs is None or not all(not isinstance(p, tuple) or p[1] or header for p in pairs)):
        raise refusal  # for a batch keyed throughout: each repeat is answered, each new ad refused (review31 R2)
    state = request.scope.get("state", {})
    intake = request.app.state.link.intake  # 503 at once if NATS is not connected, before any token is taken
    keyed = pairs is not None and any(isinstance(p, tuple) and (p[1] or header) for p in pairs)
    cost = batch_tokens(getattr(intake, "gate", None), keyed, len(raw))  # none if the store refuses it (left39a)
    quota: RateQuota | None = state.get("rate_quota")
    granted, decision = (cost, None) if quota is None or cost == 0 else await quota.take(cost)
    if granted == 0 and cost > 0:
        assert decision is not None and quota is not None
        raise quota.refused(decision, " (each ad of a batch counts)")
    granted = len(raw) if cost < len(raw) else granted  # the trial's one token: its other ads are refused unsent
    scope_name = state.get("principal", ANONYMOUS).scope
    results: list[Any] = ads[:granted] if pairs is None else derived(pairs[:granted], header)  # K-<index>
    keyed_at = [] if pairs is None else [i for i, r in enumerate(results) if isinstance(r, tuple) and r[1]]
    extra = keyed_bytes(results[i][1] for i in keyed_at)  # their records' fields and keys (review30 F5)
    check_room(unsent_bytes(request.app.state.link.nc), len(body), settings.nats.max_pending_bytes, extra)

    async def keyed(i: int) -> Accepted:  # the keyed ad at index i (results[i] stays its pair until all are done)
        return await intake.submit(results[i][0], results[i][1], scope=scope_name,  # type: ignore[no-any-return]
                                   refuse=refusal)

    tried: list[int] | range
    flat: list[Accepted | Queued | GameadError]
    if pairs is None:  # all valid, none keyed: one pipeline (results: a copy, each ad replaced by its result)
        tried = range(granted)
        flat = await intake.submit_many(results)
    else:
        plain = [i for i, r in enumerate(results) if isinstance(r, tuple) and r[1] is None]
        # the unkeyed ads in one pipeline, beside the keyed ones, AT_ONCE of those at a time, each its own answer
        outcomes = await both(  # one raising (the pipeline: a bug) stops the other first (review30b F8)
            intake.submit_many([results[i][0] for i in plain]) if plain else asyncio.sleep(0, []),
            at_most(keyed_at, keyed, lambda i: unexpected(i, keyed_ad_id(scope_name, results[i][1]))))
        tried = plain + keyed_at
        flat = [*outcomes[0], *outcomes[1]]
    if tried and all(isinstance(o, (QueueUnavailable, QueueFull)) and not isinstance(o, MaybeQueued) for o in flat):
        raise flat[0]  # type: ignore[misc]  # NATS took none of them: 503 for the whole batch, retry it as it is
    if refusal is not None and flat and all(isinstance(o, RecordsFull) for o in flat):
        raise refusal  # no repeat among them: the whole batch refused, as one without keys
    # else each ad has its own result: one whose publish got no answer may still be analysed (MaybeQueued, with
    # its id): a whole 503 would have told the client to send it again (a reviewer's drill analysed 40 twice)
    if cost == 0 and quota is not None and (taken := sum(not isinstance(o, StorageFailing) for o in flat)):
        await quota.take(taken)  # keyed ads during a store outage pay once answered, the refused ones never
    accepted = duplicates = 0
    for i, outcome in zip(tried, flat, strict=True):
        results[i] = outcome
        if not isinstance(outcome, GameadError):
            accepted += 1
            duplicates += outcome.duplicate
    stamps: dict[Any, bytes] = {}
    parts = [result_of(r, stamps) for r in results]
    if granted < len(raw):
        assert decision is not None
        limited = result_of(error("rate_limited", f"rate limit reached after {granted} ads of this batch; send "
                                  f"the rest again after {max(1, math.ceil(decision.retry_after))}s",
                                  {"retryAfter": float(f"{decision.retry_after:.3f}")}), stamps)
        parts.extend(limited for _ in range(len(raw) - granted))
    headers = {k.decode(): v.decode() for k, v in decision.headers()} if decision is not None else None
    return JsonResponse(answer_bytes(parts, accepted, duplicates), 200, headers)


@router.post(
    "/ads/batch",
    status_code=200,
    response_model=AdBatchResult,
    summary="Submit many ads at once",
    responses=error_responses(400, 422, 503),
    openapi_extra=body_schema(AdBatch),
)
async def submit_ads_batch(request: Request, idempotency_key: KeyHeader = None) -> Response:
    """Queue up to `api.batch_max` (default 500) ads in one request; their publishes are pipelined.

    Answers 200 with one result per ad, in order: the 202 body of `POST /ads` (the ad is on the queue), or
    that ad's error `{"error": {"code", "message", "details"}}` (`validation_failed`,
    `idempotency_key_reused`, `rate_limited`, `queue_full`…), then `accepted` (on the queue, `duplicates`
    included), `duplicates`, `rejected`. An ad may carry `idempotencyKey`, scoped to the caller as the
    `Idempotency-Key` header of `POST /ads`. With the header `K`, each ad without its own key gets `K-<index>`
    (0-based): a resent batch answers each ad `duplicate: true` with its first id; `K` may then have at most
    199 − the digits of the last index characters (else 400 `invalid_idempotency_key`), and an item's own key may
    not be another item's `K-<index>` (400 `invalid_idempotency_key`, `details.indexes`). Each ad counts against
    the caller's rate limit; 429 when no ad could be taken, 503 when NATS certainly took none of them (then
    retry the whole batch)."""
    return await submit_batch(request)

