"""Every ``/v1`` write goes through the audit trail, whatever the outcome: a pure ASGI middleware outside the gate.

For each ``POST``/``PUT``/``PATCH``/``DELETE`` under ``/v1`` (by :mod:`gamead_core.api.auth`'s rule, every one is
an operator action):

* it makes the request an :class:`~gamead_core.audit.context.ActionContext` (request id, method, path, client
  address; the gate adds the caller), so the route, or the job framework it calls, records the action
  (``accepted``) before doing it, with who did it;
* it answers ``X-Request-Id`` (the client's, when it sent a well-formed one, else a new id);
* once the answer is sent it records what the handler did not: a refusal (``refused``, with the code of the
  error the client got: 403 from the gate, 400/404/409/422/429/503 from the route, 413 for a streamed body over
  its cap, ``request_timeout`` when the server cut a body off at ``api.read_timeout`` — the 408 the client got
  from :mod:`gamead_core.api.http_limits`, not the app's answer into the void — and ``client_disconnected``
  when the client went away before its body was whole, so a refusal's ``code`` is never null), an accepted
  action that then failed (``failed``, with ``undoes``: the sequence of the request's own ``accepted`` record, not
  throttled, so ``outcome=accepted`` can leave exactly that record out; review26 F5; and the ``jobId`` that record
  names, a ``job.cancel``'s: attack27 F7),
  or, for a ``/v1`` write added later that records nothing itself, the action (``accepted``). A dry run says it
  is not an action (:func:`gamead_core.audit.not_an_action`) and is not recorded.

Not recorded: requests whose caller the gate could not identify (401, a 413 with an unknown token) and answers
the server gives before a request reaches the app (414, 431, 400 framing: no caller is known yet): anyone can
send those, and the trail keeps a bounded number of records (they are logged). A 413 for a declared body over
its cap is recorded with the caller the gate found (``GateMiddleware._note_caller``).
Refusals are throttled per caller (``audit.refusals_per_minute``, the rest counted in ``repeats``) and, all callers
together, per node (``audit.node_refusals`` per ``audit.node_refusals_window``: a caller rotating its address is a new
caller each time, attack31b F8): the rest is counted into one ``refusals_suppressed`` record per window
(:mod:`gamead_core.audit.refusal_cap`), written at the next refusal once the window is over, or from a timer.

Reads (``GET``) and everything outside ``/v1`` pass straight through: the submit hot path pays one string test.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gamead_core.api.auth import SAFE_METHODS
from gamead_core.api.refusal_order import REFUSAL_SCOPE_KEY, Refusal
from gamead_core.audit.context import ActionContext, enter, leave
from gamead_core.audit.log import AuditLog, record_action
from gamead_core.audit.model import (AuditRecord, RefusalThrottle, action_for, job_of_path, request_id_from,
                                     worker_of_path)
from gamead_core.audit.refusal_cap import Caller, RefusalCap
from gamead_core.config import GameadSettings
from gamead_core.errors import GameadError
from gamead_core.models import utcnow

log = logging.getLogger(__name__)

#: bytes of an error answer kept to read its code
_ERROR_BODY_BYTES = 4096
#: what the trail says of a request whose client went away before its body was whole (no answer reached it)
_CLIENT_GONE = orjson.dumps({"error": {"code": "client_disconnected", "message": "the client went away before "
                                       "its request was received whole: nothing was done"}})


class AuditGate:
    """The audit middleware of the API (see the module docstring)."""

    def __init__(self, app: ASGIApp, settings: GameadSettings) -> None:
        self.app = app
        self.throttle = RefusalThrottle(settings.audit.refusals_per_minute)
        self.cap = RefusalCap(settings.audit.node_refusals, settings.audit.node_refusals_window)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._writing: set[asyncio.Task[None]] = set()  # summaries being written from the timer (kept referenced)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # at shutdown, the window's pending summary first (review31 R8)
            async def shutting() -> Message:
                message = await receive()
                if message["type"] == "lifespan.shutdown":
                    await self.flush(getattr(getattr(scope.get("app"), "state", None), "audit", None))
                return message

            await self.app(scope, shutting, send)
            return
        if scope["type"] != "http" or not scope["path"].startswith("/v1/") or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        sent = [value for name, value in scope["headers"] if name == b"x-request-id"]
        client = scope.get("client")
        ctx = ActionContext(  # an X-Request-Id sent twice names no one request: a fresh id
            request_id=request_id_from(sent[0].decode("latin-1") or None if len(sent) == 1 else None),
            method=scope["method"], path=scope["path"], client=str(client[0]) if client else None,
            state=scope.setdefault("state", {}),
        )
        status = 0
        body = bytearray()
        gone = False  #: the app was told the client disconnected

        async def receiving() -> Message:
            nonlocal gone
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            return message

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", ()),
                                                   (b"x-request-id", ctx.request_id.encode())]}
            elif message["type"] == "http.response.body" and status >= 400 and len(body) < _ERROR_BODY_BYTES:
                body.extend(message.get("body", b"")[: _ERROR_BODY_BYTES - len(body)])
            await send(message)

        token = enter(ctx)
        try:
            await self.app(scope, receiving, sending)
        except Exception:
            await self._after(scope, ctx, 500, b'{"error": {"code": "internal_error"}}')
            raise
        finally:
            leave(token)
        refusal = scope.get(REFUSAL_SCOPE_KEY)
        if isinstance(refusal, Refusal):  # the server answered for the app (a 408): that is what the client got
            status, answer = refusal.status, orjson.dumps({"error": {"code": refusal.code,
                                                                     "message": refusal.message}})
        elif gone and status >= 400 and not _error_of(bytes(body)).get("code"):
            answer = _CLIENT_GONE  # nobody got the app's bare answer
        else:
            answer = bytes(body)
        await self._after(scope, ctx, status, answer)

    async def _after(self, scope: Scope, ctx: ActionContext, status: int, body: bytes) -> None:
        """Record what the handler did not (never raises: the answer is already sent)."""
        if ctx.principal is None or ctx.not_an_action or status == 0 or (ctx.recorded and status < 400):
            return  # unidentified caller, a dry run, a client gone before any answer, or recorded by the handler
        audit: AuditLog | None = getattr(getattr(scope.get("app"), "state", None), "audit", None)
        fields: dict[str, Any] = {}
        if status >= 400:
            error = _error_of(body)
            fields = {"outcome": "failed" if ctx.recorded else "refused", "code": error.get("code"),
                      "message": str(error.get("message") or "")[:300] or None,
                      "details": {"status": status, **_worker_named(ctx.path or "")}, "undoes": ctx.accepted_seq,
                      "job_id": ctx.accepted_job_id or job_of_path(ctx.path or "")}
            # a failure after an accepted record is not throttled: at most one per accepted record, and it is what
            # tells ``outcome=accepted`` the action was not carried out
            allowed, skipped = (True, 0) if ctx.recorded else self.throttle.take(
                f"{ctx.actor}|{ctx.client if ctx.role is None else ''}")
            if not allowed:
                return
            if not ctx.recorded:  # then all callers' refusals together, per node (attack31b F8)
                await self._summarise(audit)
                if not self.cap.allow(Caller(ctx.actor, ctx.role, ctx.client), fields["code"], time.monotonic(),
                                      1 + skipped):
                    self._summarise_later(audit)
                    return
            if skipped:
                fields["repeats"] = skipped
        else:
            fields = {"message": "recorded after the fact: this route writes no record of its own"}
        try:
            await record_action(audit, action_for(ctx.method, ctx.path), ctx=ctx, **fields)
        except GameadError as exc:
            log.warning("an operator request could not be recorded in the audit trail: %s", exc.message,
                        extra={"request_id": ctx.request_id, "actor": ctx.actor, "path": ctx.path,
                               "status": status})


    async def flush(self, audit: AuditLog | None) -> None:
        """At shutdown: the pending summary written now, its window over or not, and the timer's writes awaited
        (a restart within the window left no trace of the refusals it had counted; never raises)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._summarise(audit, force=True)
        if self._writing:
            await asyncio.wait(set(self._writing), timeout=5)

    async def _summarise(self, audit: AuditLog | None, force: bool = False) -> None:
        """Write the ``refusals_suppressed`` record of a window that is over (``force``: or not), if one is pending
        (never raises)."""
        said = self.cap.summary(time.monotonic(), force=force)
        if said is None:
            return
        record = AuditRecord(at=utcnow(), action="refusals_suppressed", outcome="refused", actor=said.top.actor,
                             role=said.top.role, client=said.top.client, code="refusals_suppressed",
                             message=said.message(), details=said.details(), repeats=said.count)
        try:
            if audit is None:
                raise GameadError("the audit trail is not running on this API node")
            await audit.write(record)
        except GameadError as exc:
            log.warning("%s; and this could not be recorded in the audit trail: %s", said.message(), exc.message,
                        extra={"refusals_not_recorded": said.count})

    def _summarise_later(self, audit: AuditLog | None) -> None:
        """Make sure a timer writes the pending summary when its window is over, should no refusal come by then
        (one timer at a time)."""
        loop = asyncio.get_running_loop()
        if self._timer is not None and self._timer_loop is loop:  # one of another loop (closed) never fires
            return
        if (due := self.cap.due_in(time.monotonic())) is not None:
            self._timer, self._timer_loop = loop.call_later(max(due, 0.05), self._on_timer, audit), loop

    def _on_timer(self, audit: AuditLog | None) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self._summarise(audit))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)
        if self.cap.due_in(time.monotonic()) is not None:  # not due yet (a clock read a little early)
            self._summarise_later(audit)


def _error_of(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _worker_named(path: str) -> dict[str, str]:
    """``{"workerId": id}`` for a ``worker.quiet``/``worker.resume`` request's path, else ``{}``
    (:func:`~gamead_core.audit.model.worker_of_path`): what its failed record names, as its accepted one does."""
    worker = worker_of_path(path)
    return {"workerId": worker} if worker else {}
