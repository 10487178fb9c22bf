"""The request gate of the API: body-size cap → authentication → role → rate limit, as one pure ASGI middleware.

Pure ASGI (not ``BaseHTTPMiddleware``) because it sits on the hot path of ``POST /ads``: in the default
one-machine set-up (auth open, no Redis) it costs a header scan and an in-memory bucket update.

Who may call what is :data:`gamead_core.api.auth.GRANTS`, keyed by (read/write, route class):

=======  =================================================  ===================================  ===============
class    paths                                              read (GET…) / write (POST, DELETE…)  bucket
=======  =================================================  ===================================  ===============
open     /healthz /readyz /docs /redoc /openapi.json        anyone / anyone                      none
ads      /ads, /ads/batch, /ads:batch                       any role / submitter, operator       ratelimit
ad       /ads/{id} and below                                any role / operator                  ratelimit
v1       /v1, /v1/…                                         viewer, operator / operator          ratelimit.admin
other    anything else                                      any role / operator                  ratelimit
=======  =================================================  ===================================  ===============

``HEAD`` is served as ``GET`` without a body on every path (:meth:`GateMiddleware._head`); an ``Authorization``
header sent twice is refused (400 ``duplicate_header``: which token counts would be a guess), so is a query
parameter given twice, or one its route does not declare, on any route (400 ``duplicate_query_parameter``,
``unknown_query_parameter``: :mod:`~gamead_core.api.query_names`), an ``Expect`` other than ``100-continue``
(417 ``expectation_failed``, RFC 9110 §10.1.1; uvicorn ignores one), and a transfer coding other than ``chunked``
(501 ``not_implemented`` before the body is read, then closed: :func:`~.http_limits.coding_refusal`).

Batch submits (``/ads/batch``, ``/ads:batch``) take no token here: the route takes one per ad from the caller's
submit bucket (:class:`~gamead_core.api.quota.RateQuota` in ``scope["state"]["rate_quota"]``), and their body cap
is ``api.batch_max_body_bytes``. Anonymous callers (auth open) are keyed by client IP; a caller with a valid token
is keyed by its name even when auth is open. Where tokens are required, a request without a valid one is charged
to its client's failure bucket (``ratelimit.failed_auth``, per node), past which it gets 429, not 401; a valid
token is always served; the 401/403 log lines are throttled (:mod:`~gamead_core.api.auth_failures`). Errors
are the API's usual JSON (``unauthenticated``, ``forbidden`` naming the role needed, ``rate_limited``,
``payload_too_large``). The principal (name and role; :data:`~gamead_core.api.auth.ANONYMOUS` without a valid
token) is put in ``scope["state"]["principal"]`` (``request.state.principal`` in a handler), so every route can
say who called it.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gamead_core.api.auth import (
    ANONYMOUS,
    Principal,
    TokenTable,
    allowed_roles,
    auth_required,
    bearer_token,
    is_loopback,
    needed_roles_text,
    route_class,
)
from gamead_core.api.auth_failures import FailedAuth, client_key, shared
from gamead_core.api.errors import DuplicateHeader, error_response
from gamead_core.api.body_caps import BATCH_PATHS, body_cap
from gamead_core.api.http_limits import Refusal, coding_refusal
from gamead_core.api.query_names import query_refusal
from gamead_core.api.records_gate import token_deferred
from gamead_core.api.quota import RateQuota
from gamead_core.api.ratelimit import Decision, RateLimiter
from gamead_core.api.unrouted import method_not_routed
from gamead_core.config import ROLES, GameadSettings, RateSettings


__all__ = ["BATCH_PATHS", "BodyTooLarge", "GateMiddleware", "route_class"]


class BodyTooLarge(HTTPException):
    """A streamed body passed its cap (``setting``: ``api.max_body_bytes``, or ``api.batch_max_body_bytes`` on
    the batch route); rendered by the app's handlers as ``payload_too_large``."""

    def __init__(self, limit: int, seen: int | None = None, setting: str = "api.max_body_bytes") -> None:
        size = f"is {seen:,} bytes" if seen is not None else "is too large"
        super().__init__(413, f"the body {size}; the limit is {limit:,} bytes ({setting})")


class GateMiddleware:
    """Body cap, auth and rate limit for every HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp, settings: GameadSettings) -> None:
        self.app = app
        self.max_body = settings.api.max_body_bytes
        self.max_batch_body = settings.api.batch_max_body_bytes
        self.auth_required = auth_required(settings)
        self.tokens = TokenTable(settings.auth)
        self.identify = self.auth_required or len(self.tokens) > 0
        rl = settings.ratelimit
        self.limits_on = rl.enabled if rl.enabled is not None else not is_loopback(settings.api.host)
        self.default_limit = RateSettings(rate=rl.rate, burst=rl.burst)
        self.role_limits = dict(rl.roles)
        self.admin_limit = rl.admin
        self.failed_limit = rl.failed_auth
        self._limiter: RateLimiter | None = None
        self._failures: FailedAuth | None = None  # the app's (auth_failures.shared), once a request has come

    def limiter(self, scope: Scope) -> RateLimiter:
        """The app's limiter (made in the lifespan); a local-only one if the lifespan did not run."""
        if self._limiter is None:
            app = scope.get("app")
            found = getattr(getattr(app, "state", None), "limiter", None)
            self._limiter = found if isinstance(found, RateLimiter) else RateLimiter(None)
        return self._limiter

    def failures(self, scope: Scope) -> FailedAuth:
        """The app's failed-authentication limit (``ratelimit.failed_auth``) and refusal-line throttle."""
        if self._failures is None:
            self._failures = shared(scope, self.failed_limit if self.limits_on else None)
        return self._failures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            await self._head(scope, receive, send)
            return
        if scope["query_string"] and (refused := query_refusal(scope)) is not None:  # twice, or not the route's
            await self._error(scope, receive, send, refused.status, refused.code, refused.message,
                              details=refused.details)
            return
        klass = route_class(scope["path"])
        max_body, limit_name = body_cap(scope["path"], self.max_body, self.max_batch_body)

        # --- 1. body-size cap ------------------------------------------------------------------------
        length: bytes | None = None
        authorization: bytes | None = None
        streamed = False
        unapplied: Refusal | None = None  # a transfer coding but chunked (RFC 9112 §6.1)
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"authorization":
                if authorization is not None or b"," in value:  # which token counts would be a guess; a comma:
                    twice = (DuplicateHeader.of("Authorization") if authorization is not None  # two lines folded
                             else DuplicateHeader.folded("Authorization", "a Bearer token never holds one (RFC 6750)"))
                    await self._error(scope, receive, send, twice.status, twice.code, twice.message,
                                      details=twice.details)
                    return
                authorization = value
            elif name == b"transfer-encoding":
                streamed = True
                unapplied = unapplied or coding_refusal(value)
            elif name == b"expect" and value.strip().lower() != b"100-continue":
                await self._error(scope, receive, send, 417, "expectation_failed", "the API meets no Expect but "
                                  "100-continue (RFC 9110 §10.1.1): send the request without it")
                return
        if unapplied is not None:  # framed as chunked by the protocol, refused here: answered in request order
            await self._error(scope, receive, send, unapplied.status, unapplied.code, unapplied.message,
                              headers={"Connection": "close"})
            return
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = 0  # the server rejects a malformed Content-Length itself
            if declared > max_body:
                self._note_caller(scope, authorization)  # so the audit trail says who got this 413
                await self._error(scope, receive, send, 413, "payload_too_large",
                                  f"the body is {declared:,} bytes; the limit is {max_body:,} bytes "
                                  f"({limit_name})")
                return
        elif streamed:  # chunked: count the bytes as they arrive
            await self._call_capped(scope, receive, send, klass, authorization, max_body)
            return
        await self._gate(scope, receive, send, klass, authorization)

    def _note_caller(self, scope: Scope, authorization: bytes | None) -> None:
        """Put the caller in ``scope["state"]`` for a request refused before authentication (a declared body
        over the cap): a valid token's principal, or :data:`ANONYMOUS` when auth is open; nothing for an
        unknown token where auth is required (anyone can send those: logged, not audited)."""
        token = bearer_token(authorization) if self.identify else None
        found = self.tokens.lookup(token) if token else None
        if found is not None or not self.auth_required:
            scope.setdefault("state", {})["principal"] = found or ANONYMOUS

    async def _head(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``HEAD`` is ``GET`` without the body (RFC 9110 §9.3.2), on every route that takes ``GET`` (FastAPI's
        routes answered 405 to it; Starlette's own add it). The app sees ``GET`` in a copy of the scope; the
        server, which kept ``HEAD`` in its own, sends the headers (``Content-Length`` included) and drops the
        body. The route the app matched is copied back for the outer middleware (metrics)."""
        inner = dict(scope)
        inner["method"] = "GET"
        try:
            await self(inner, receive, send)
        finally:
            for key in ("route", "endpoint", "path_params"):
                if key in inner:
                    scope[key] = inner[key]

    async def _call_capped(self, scope: Scope, receive: Receive, send: Send, klass: str,
                           authorization: bytes | None, max_body: int) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            setting = body_cap(scope["path"], self.max_body, self.max_batch_body)[1]
            await self._gate(scope, self._capped(receive, max_body, setting), tracking_send, klass, authorization)
        except BodyTooLarge as exc:  # raised where no handler of the app saw it
            if started:
                raise
            await self._error(scope, receive, send, 413, "payload_too_large", str(exc.detail))

    async def _gate(self, scope: Scope, receive: Receive, send: Send, klass: str,
                    authorization: bytes | None) -> None:
        path: str = scope["path"]

        if klass == "open":
            await self._run(scope, receive, send)
            return

        # --- 2. authentication and role ----------------------------------------------------------------
        principal = ANONYMOUS
        if self.identify:
            token = bearer_token(authorization)  # always compared: a valid token is served whatever its address sent
            found = self.tokens.lookup(token) if token else None
            if found is not None:
                principal = found
            elif self.auth_required:
                await self._unauthenticated(scope, receive, send, token)
                return
            scope.setdefault("state", {})["principal"] = principal  # known before a 403: the audit trail says who
            method: str = scope["method"]
            if self.auth_required and not principal.may(method, klass) and not method_not_routed(
                    scope, principal.role, klass):  # a method the path lacks: the app's 405 + Allow
                needs = allowed_roles(method, klass)
                self.failures(scope).log_refusal(
                    logging.WARNING, _client_ip(scope), "refused: 403 forbidden, token %r (role %s) %s %s",
                    principal.name, principal.role, method, path, principal=principal.name, actor_role=principal.role,
                    status=403)
                await self._error(
                    scope, receive, send, 403, "forbidden",
                    f"token {principal.name!r} has role {principal.role!r}, which may not {method} {path}; "
                    f"it needs role {needed_roles_text(needs)}",
                    details={"role": principal.role, "needs": [r for r in ROLES if r in needs]},
                )
                return
        scope.setdefault("state", {})["principal"] = principal

        if not self.limits_on:
            await self.app(scope, receive, send)
            return

        # --- 3. rate limit -----------------------------------------------------------------------------
        if klass == "v1":
            limit, bucket = self.admin_limit, "admin"
        else:
            limit = self.role_limits.get(principal.role or "", self.default_limit)
            bucket = "api"
        who = f"tok:{principal.name}" if principal.authenticated else f"ip:{client_key(_client_ip(scope))}"  # v6: /64
        limiter = self._limiter or self.limiter(scope)
        if path in BATCH_PATHS or token_deferred(scope, path):  # counted by the route (batch: per ad; R2)
            scope["state"]["rate_quota"] = RateQuota(limiter, bucket, who, limit)
            await self.app(scope, receive, send)
            return
        if limiter.link is None:  # one-machine mode: no await on the hot path
            decision = limiter.hit_local(bucket, who, rate=limit.rate, burst=limit.burst)
        else:
            decision = await limiter.hit(bucket, who, rate=limit.rate, burst=limit.burst)
        if not decision.allowed:
            await self._limited(scope, receive, send, decision, limit, principal)
            return
        await self.app(scope, receive, _with_headers(send, decision))

    async def _unauthenticated(self, scope: Scope, receive: Receive, send: Send, token: str | None) -> None:
        """401, or 429 without a log line past the client's failed-authentication limit, for a request without a
        valid token (:mod:`~gamead_core.api.auth_failures`); the 401 line is throttled."""
        address, failures = _client_ip(scope), self.failures(scope)
        decision = failures.charge(address)
        if decision is not None and not decision.allowed:
            await failures.answer(decision, address)(scope, receive, send)
            return
        failures.log_refusal(logging.INFO, address, "refused: 401 unauthenticated (%s token) %s %s",
                             "invalid" if token else "no", scope["method"], scope["path"], status=401)
        message = "invalid API token" if token else "an API token is required: send Authorization: Bearer <token>"
        await self._error(scope, receive, send, 401, "unauthenticated", message,
                          headers={"WWW-Authenticate": 'Bearer realm="gamead"'}, extra=decision and decision.headers())

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})["principal"] = ANONYMOUS
        await self.app(scope, receive, send)

    def _capped(self, receive: Receive, limit: int, setting: str) -> Receive:
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit, setting=setting)
            return message

        return capped

    async def _limited(self, scope: Scope, receive: Receive, send: Send, decision: Decision,
                       limit: RateSettings, principal: Principal) -> None:
        who = f"token {principal.name!r}" if principal.authenticated else "this client address"
        retry = decision.headers()[-1][1].decode()
        await self._error(
            scope, receive, send, 429, "rate_limited",
            f"rate limit exceeded for {who}: {limit.burst} requests at once, {limit.rate:g}/s sustained; "
            f"retry after {retry}s",
            details={"limit": limit.burst, "rate": limit.rate, "retryAfter": float(f"{decision.retry_after:.3f}")},
            extra=decision.headers(),
        )

    @staticmethod
    async def _error(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str, *,
                     details: Any = None, headers: dict[str, str] | None = None,
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
        response = error_response(status, code, message, details, headers)
        if extra:
            response.raw_headers.extend(extra)
        await response(scope, receive, send)


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _with_headers(send: Send, decision: Decision) -> Send:
    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = list(message.get("headers", ())) + decision.headers()
        await send(message)

    return sender
