"""The API's contract, written into ``/openapi.json`` from one place: every status a route can answer, one
error schema, request bodies whose ``$ref`` resolve, and the ``Allow`` of ``OPTIONS`` and ``405``.

Why one place: most error answers do not come from a route. The HTTP framing bounds
(:mod:`gamead_core.api.http_limits`: 400, 408, 414, 415, 431, 501) and the body cap (413) apply to every request before
any handler runs; the gate (:mod:`gamead_core.api.middleware`: 401, 403, 429) to every route that is not open;
NATS being away (503) to every route that reads or writes it. :func:`error_statuses` decides which of these a
route can answer from its path alone (the same :func:`~gamead_core.api.auth.route_class` as the gate), so a route
added later is documented the day it is mounted. Each route adds its own (404, 409, 422…) in its decorator.

:func:`build_openapi` post-processes FastAPI's document:

* every error response is the ``Error`` component (``{"error": {"code", "message", "details"}}``), replacing
  FastAPI's ``HTTPValidationError``, which gamead never sends;
* ``Retry-After`` is documented on 429 and 503, ``WWW-Authenticate`` on 401, the ``X-RateLimit-*`` headers on 429;
* the ``$defs`` of request bodies read with :func:`gamead_core.api.body.read_body` (documented through
  ``openapi_extra``) are moved into ``components.schemas``, where their ``$ref`` point (a dangling ``$ref`` was
  issue 11 item 8: ``DlqEntry``, ``FilterBody``);
* when tokens are required, a ``bearer`` security scheme on every route that is not open;
* ``X-Request-Id`` on every answer of an operator action (a ``/v1`` write: ``gamead_core.api.audit_gate``).

Methods (RFC 9110 §9.3.7, §15.5.6): :func:`method_not_allowed` answers ``405`` with an ``Allow`` header listing
the methods of *every* route on the path (Starlette lists those of the first route it tried only: ``OPTIONS /ads``
said ``Allow: POST`` though ``GET /ads`` exists), and ``OPTIONS`` with ``204`` and the same ``Allow``. A fixed path
that a route with a path parameter would also take (``GET /ads/batch`` read as ``GET /ads/{ad_id}``: a 404 for
the ad ``batch``) answers ``405`` too: :class:`WrongMethod` is matched before every route (issue 14, C3.1).
"""

from __future__ import annotations

import copy
import json
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from gamead_core.api.auth import SAFE_METHODS, auth_required, route_class
from gamead_core.api.errors import error_response
from gamead_core.api.route_table import route_rows
from gamead_core.config import GameadSettings
from gamead_core.safe_text import shown_cut


class ErrorDetail(BaseModel):
    model_config = ConfigDict(title="ErrorDetail")

    code: str = Field(description="Stable, machine-readable: `validation_failed`, `not_found`, `rate_limited`…")
    message: str = Field(description="For people: what is wrong and, where it helps, what to do.")
    details: Any = Field(None, description="Structured context (field paths for `validation_failed`), or null.")


class ErrorBody(BaseModel):
    """Every error gamead answers (README, *HTTP API*)."""

    model_config = ConfigDict(title="Error")

    error: ErrorDetail


ERROR_REF: Final = {"$ref": "#/components/schemas/Error"}

#: what each error status means, by code (the README's table); one description per status
ERROR_DESCRIPTIONS: Final[dict[int, str]] = {
    400: "`bad_request`: not valid HTTP/1.1 (the connection is closed); `invalid_json`: the body is not a JSON "
         "object; `confirmation_required` (purge without `confirm: true`); `duplicate_header`: `Idempotency-Key` or "
         "`Authorization` sent twice; `invalid_idempotency_key`: a key outside 1-200 printable ASCII characters "
         "(no comma, no space at either end), a quoted key that is not one Structured Field string, or a batch's "
         "header too long for its `<header>-<index>` keys (`details.max`); `duplicate_query_parameter`: a query "
         "parameter given twice, or under two of its names (`details.parameter`); `unknown_query_parameter`: a "
         "query parameter the route does not take (`details.parameter`, `details.known`); "
         "`ambiguous_field`: an ad gives a field under both its names (`targetAudience`, `target_audience`)",
    401: "`unauthenticated`: no token, or an unknown one (`Authorization: Bearer <token>`)",
    403: "`forbidden`: the token's role may not do this (the message names the role needed)",
    404: "`not_found`: no such resource (or the id is not in gamead's id form)",
    408: "`request_timeout`: the request was not received whole within `api.read_timeout`",
    409: "`job_finished`: the job has already ended; `conflict`: another writer changed it first (a scale override: "
         "`details.override` is what stands, `details.overrideRevision` its revision); `idempotency_key_expired`: "
         "the first ad of this key is no longer kept (send it with a new key to analyse it again); "
         "`idempotency_key_in_process`: a request with this key is still being stored (send it again after "
         "`Retry-After` seconds: it then gets that request's answer); "
         "`repair_running`: another repair job is queued or running (`details.jobId`); "
         "`record_unreadable`: the ad's stored record cannot be read by this gamead (a worker rebuilds it from the "
         "ad's waiting message; `gamead doctor` names it)",
    413: "`payload_too_large`: the body is over `api.max_body_bytes`",
    414: "`request_line_too_long`: the request target is over `api.max_request_line_bytes`",
    415: "`unsupported_media_type`: a `Content-Encoding` other than `identity` (bodies are read as sent, never "
         "decompressed)",
    417: "`expectation_failed`: an `Expect` other than `100-continue` (RFC 9110 §10.1.1)",
    422: "`validation_failed` (details: each field path and why); `idempotency_key_reused`",
    429: "`rate_limited`: over the caller's token bucket; retry after `Retry-After` seconds",
    431: "`headers_too_large` / `too_many_headers`: over `api.max_header_bytes` / `api.max_headers`",
    503: "`queue_unavailable`, `queue_full`, `records_full`, `dlq_full`, `jobs_full`, `jobs_busy`, `storage_failed`, "
         "`storage_failing`, `topology_missing`, `topology_error`, `topology_changed`, `audit_unavailable`, "
         "`stats_unavailable`: retry after `Retry-After` seconds",
    501: "`not_implemented`: a `Transfer-Encoding` naming a coding other than `chunked` (RFC 9112 §6.1)",
}

#: answered by the server to any request, before routing (framing bounds, body cap, an unmet ``Expect``, a
#: ``Content-Encoding`` (415) or transfer coding (501) the API does not apply: attack32b F3, they were left out)
EVERY_ROUTE: Final = frozenset({400, 408, 413, 414, 415, 417, 431, 501})
#: answered by the gate and by NATS to any route that is not open (health and docs are open)
GUARDED_ROUTE: Final = frozenset({401, 403, 429, 503})

_HEADERS: Final[dict[int, dict[str, Any]]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer realm=\"gamead\"`", "schema": {"type": "string"}}},
    429: {
        "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}},
        "X-RateLimit-Limit": {"description": "Bucket size (requests at once).", "schema": {"type": "string"}},
        "X-RateLimit-Remaining": {"description": "Whole requests left now.", "schema": {"type": "string"}},
        "X-RateLimit-Reset": {"description": "Seconds until the bucket is full.", "schema": {"type": "string"}},
        "X-RateLimit-Scope": {"description": "`shared` (the bucket in Redis) or `node` (this node's own).",
                              "schema": {"type": "string", "enum": ["shared", "node"]}},
    },
    503: {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}},
}


_REQUEST_ID: Final = {"description": "The request's id, as in its audit record (the client's `X-Request-Id` when "
                                      "well-formed, else a new one).", "schema": {"type": "string"}}


def error_statuses(path: str) -> frozenset[int]:
    """The error statuses a route on ``path`` can answer whatever its handler does. Pure.

    Every route: the framing bounds and the body cap (:data:`EVERY_ROUTE`). A route that is not open (health,
    docs) also: 401, 403, 429 from the gate and 503 when NATS is away (:data:`GUARDED_ROUTE`).
    """
    if route_class(path) == "open":
        return EVERY_ROUTE
    return EVERY_ROUTE | GUARDED_ROUTE


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route decorator: each status answered with the ``Error`` schema."""
    return {status: {"description": ERROR_DESCRIPTIONS[status],
                     "content": {"application/json": {"schema": dict(ERROR_REF)}}} for status in statuses}


def _is_error_schema(content: dict[str, Any] | None) -> bool:
    """True if a response declares no body, or FastAPI's default validation error (never sent by gamead)."""
    if not content:
        return True
    schema = (content.get("application/json") or {}).get("schema") or {}
    return schema.get("$ref", "").endswith(("/HTTPValidationError", "/Error")) or not schema


def _document_errors(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    statuses = set(error_statuses(path)) | {int(s) for s in responses if s.isdigit() and int(s) >= 400}
    for status in sorted(statuses):
        key = str(status)
        response = responses.setdefault(key, {"description": ERROR_DESCRIPTIONS.get(status, "error")})
        if _is_error_schema(response.get("content")):
            response["content"] = {"application/json": {"schema": dict(ERROR_REF)}}
            if response.get("description") in (None, "", "Validation Error", "Successful Response"):
                response["description"] = ERROR_DESCRIPTIONS.get(status, "error")
        if status in _HEADERS:
            response.setdefault("headers", {}).update(copy.deepcopy(_HEADERS[status]))
    operation["responses"] = {k: responses[k] for k in sorted(responses)}


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if not renames:
        return node
    text = json.dumps(node)
    for old, new in renames.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    return json.loads(text)


def _hoist_defs(schema: dict[str, Any], components: dict[str, Any], suffix: str) -> dict[str, Any]:
    """Move a body schema's ``$defs`` into ``components`` (where its ``$ref`` point); a name taken by another
    schema gets ``suffix`` and the references are rewritten. Returns the schema without ``$defs``."""
    defs: dict[str, Any] = schema.pop("$defs", None) or {}
    renames: dict[str, str] = {}
    for name, definition in defs.items():
        if name in components and components[name] != definition:
            renames[name] = f"{name}{suffix}"
    for name, definition in defs.items():
        target = renames.get(name, name)
        components.setdefault(target, _rewrite_refs(definition, renames))
    return _rewrite_refs(schema, renames)


def _hoist_request_bodies(document: dict[str, Any]) -> None:
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            content = (operation.get("requestBody") or {}).get("content") or {}
            for media in content.values():
                schema = media.get("schema")
                if isinstance(schema, dict) and "$defs" in schema:
                    media["schema"] = _hoist_defs(schema, components, "Body")


def _drop_unreferenced(document: dict[str, Any], names: tuple[str, ...]) -> None:
    """Remove the components ``names`` when nothing outside them refers to them any more."""
    schemas = document.get("components", {}).get("schemas", {})
    rest = {k: v for k, v in schemas.items() if k not in names}
    text = json.dumps({"paths": document.get("paths"), "schemas": rest})
    for name in names:
        if f'"#/components/schemas/{name}"' not in text:
            schemas.pop(name, None)


def dangling_refs(document: dict[str, Any]) -> set[str]:
    """Every ``#/components/schemas/…`` reference in ``document`` that has no component. Pure."""
    import re

    names = set(document.get("components", {}).get("schemas", {}))
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))
    return refs - names


def build_openapi(app: FastAPI, settings: GameadSettings) -> dict[str, Any]:
    """FastAPI's OpenAPI document, completed as the module docstring says."""
    document = get_openapi(title=app.title, version=app.version, summary=app.summary,
                           description=app.description, routes=app.routes)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorDetail"] = ErrorDetail.model_json_schema()
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    error_schema.pop("$defs", None)
    schemas["Error"] = error_schema
    _hoist_request_bodies(document)
    secured = auth_required(settings)
    if secured:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "An API token (`auth.tokens`)."}}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            _document_errors(path, operation)
            if route_class(path) == "v1" and method.upper() not in SAFE_METHODS:  # an operator action
                for response in operation["responses"].values():
                    response.setdefault("headers", {})["X-Request-Id"] = _REQUEST_ID
            if secured and route_class(path) != "open":
                operation["security"] = [{"bearer": []}]
    _drop_unreferenced(document, ("HTTPValidationError", "ValidationError"))
    missing = dangling_refs(document)
    if missing:  # a bug in a route's documentation: say which, never serve a broken contract silently
        raise RuntimeError(f"openapi.json would have dangling $ref: {sorted(missing)}")
    return document


def install(app: FastAPI, settings: GameadSettings) -> None:
    """Serve :func:`build_openapi` at ``/openapi.json`` (built once) and answer ``405``/``OPTIONS`` with the
    right ``Allow`` (:func:`method_not_allowed`)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(405, method_not_allowed)
    app.router.routes.insert(0, WrongMethod(shadowed_paths(app)))


def shadowed_paths(app: Any) -> dict[str, frozenset[str]]:
    """Fixed paths (no path parameter) of ``app``'s routes that a route with a parameter also matches, each with
    the methods its own routes serve. ``{"/ads/batch": {"POST"}, "/v1/dlq/replay": {"POST"}, …}``."""
    rows = [(path, regex, methods) for path, regex, methods, _ in route_rows(app.routes)]
    fixed: dict[str, set[str]] = {}
    for path, _, methods in rows:
        if "{" not in path:
            fixed.setdefault(path, set()).update(methods)
    return {path: frozenset(methods) for path, methods in fixed.items()
            if any("{" in other and regex.match(path) for other, regex, _ in rows)}


class WrongMethod(BaseRoute):
    """Matched first: a request to one of ``paths`` (:func:`shadowed_paths`) with a method its routes do not serve
    raises ``405`` (answered by :func:`method_not_allowed`, after the gate, as Starlette's own 405), instead of
    falling through to the route with a parameter (``GET /ads/batch`` → ``GET /ads/{ad_id}`` → 404). One dict
    lookup per request; no path regex."""

    def __init__(self, paths: dict[str, frozenset[str]]) -> None:
        self.paths = paths

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            methods = self.paths.get(scope["path"])
            if methods is not None and scope["method"] not in methods:
                return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise HTTPException(status_code=405)


def route_table(app: Any) -> list[tuple[Any, frozenset[str], int]]:
    """``(path regex, methods, path parameters)`` of every route of ``app``, routes of included routers too
    (:func:`~gamead_core.api.route_table.route_rows`)."""
    return [(regex, methods, path.count("{")) for path, regex, methods, _ in route_rows(app.routes)]


def allowed_methods(app: Any, path: str) -> list[str]:
    """The methods the resource at ``path`` serves, ``OPTIONS`` included (and ``HEAD`` with ``GET``), sorted.

    When routes of several templates match the path, the most specific (fewest path parameters) is the
    resource: ``/v1/dlq/replay`` is ``POST`` only, though ``GET /v1/dlq/{ad_id}`` would take it as an id."""
    state = getattr(app, "state", None)
    table = getattr(state, "route_table", None)
    if table is None:
        table = route_table(app)
        if state is not None:
            state.route_table = table
    matching = [(methods, params) for regex, methods, params in table if regex.match(path)]
    fewest = min((params for _, params in matching), default=0)
    allowed = {"OPTIONS"}
    for methods, params in matching:
        if params == fewest:
            allowed |= methods
    if "GET" in allowed:  # served as GET without a body (gamead_core.api.middleware)
        allowed.add("HEAD")
    return sorted(allowed)


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """``OPTIONS`` → ``204`` with ``Allow``; any other method a path does not take → ``405`` (JSON error) with
    ``Allow`` listing the methods of every route on that path."""
    allow = ", ".join(allowed_methods(request.app, request.url.path))
    if request.method == "OPTIONS":
        return Response(status_code=204, headers={"Allow": allow})
    detail = exc.detail if isinstance(exc, HTTPException) and isinstance(exc.detail, str) else "Method Not Allowed"
    path = shown_cut(request.url.path)  # a client's text: escaped and cut (attack55: an ESC, 8 KiB echoed raw)
    return error_response(405, "method_not_allowed",
                          f"{request.method} is not allowed on {path}: {detail.lower()}; use {allow}",
                          {"allow": allow.split(", ")}, {"Allow": allow})
