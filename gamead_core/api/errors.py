"""Every API error is ``{"error": {"code", "message", "details"}}`` with a stable code. Never a traceback."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gamead_core.detail_words import detail_words
from gamead_core.api.responses import json_response
from gamead_core.errors import (
    Conflict,
    ConfigError,
    GameadError,
    IdempotencyKeyExpired,
    IdempotencyKeyReused,
    NoStreamLeader,
    NotFound,
    QueueFull,
    QueueUnavailable,
    StorageFailed,
    TopologyChanged,
    TopologyError,
    TopologyMissing,
)
from gamead_core.ids import INVALID_KEY_CODE
from gamead_core.key_in_process import IdempotencyKeyInProcess
from gamead_core.jobs.busy import JobsBusy
from gamead_core.log_throttle import Throttle
from gamead_core.redact import redact_text
from gamead_core.times import check_window
from gamead_core.store.unreadable import UnreadableRecord

log = logging.getLogger(__name__)
#: the 5xx answers' WARNING lines: one per code every 5 s, with the count left out
_SERVER_ERRORS = Throttle()



def mask_urls(text: str) -> str:
    """``text`` with the credentials of every URL in it masked (:func:`gamead_core.redact.redact_text`, the log
    net's own rule: a URL cut at its first comma left ``redis://:S3,cret@h``'s rest whole, review41 F3): what an
    error message may carry into a log line."""
    return redact_text(text)


RETRY_AFTER_SECONDS = 2

#: error class → HTTP status. The ``code`` comes from the class.
STATUS_OF: dict[type[GameadError], int] = {
    NotFound: 404,
    Conflict: 409,
    UnreadableRecord: 409,
    IdempotencyKeyReused: 422,
    IdempotencyKeyExpired: 409,
    IdempotencyKeyInProcess: 409,
    QueueFull: 503,
    JobsBusy: 503,
    StorageFailed: 503,
    TopologyMissing: 503,
    QueueUnavailable: 503,
    TopologyError: 503,
    TopologyChanged: 503,
    ConfigError: 500,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class ApiError(GameadError):
    """An error a route raises about the request itself. Each subclass fixes its HTTP ``status`` and its stable
    ``code`` as class attributes (as every :class:`GameadError` does); a 503 answer carries ``Retry-After``."""

    status: int = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message, details=details)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)} if self.status == 503 else {}


class InvalidJson(ApiError):
    """The body is not JSON, or not a JSON object (400)."""

    status, code = 400, "invalid_json"


class AmbiguousField(ApiError):
    """An object of the body gives one field under both its names, JSON and Python (``targetAudience`` and
    ``target_audience``): which value counts would be a guess (400; :func:`gamead_core.json_keys.spelled_twice`)."""

    status, code = 400, "ambiguous_field"


class DuplicateHeader(ApiError):
    """A header whose meaning is one value (``Idempotency-Key``, ``Authorization``) was sent more than once
    (400): which one would count is a guess (RFC 9110 §5.3: such a field must not repeat); ``details``:
    ``{"header": name}``."""

    status, code = 400, "duplicate_header"

    @classmethod
    def of(cls, header: str) -> DuplicateHeader:
        return cls(f"the {header} header is sent more than once: send it once", details={"header": header})

    @classmethod
    def folded(cls, header: str, why: str) -> DuplicateHeader:
        """``header``'s one value holds a comma: the form of two field lines joined into one (RFC 9110 §5.3, which
        a proxy may do), so it is refused as if sent twice. ``why``: why a comma cannot be part of one value."""
        return cls(f"the {header} header holds a comma, the form of two {header} headers joined into one (RFC 9110 "
                   f"§5.3); {why}: send one value, once", details={"header": header, "folded": True})


class InvalidIdempotencyKey(ApiError):
    """An idempotency key outside the rule of :func:`gamead_core.ids.idempotency_key_problem` (printable ASCII,
    1-200 characters, no comma, no space at either end), or a quoted header that is not one sf-string
    (:mod:`gamead_core.api.key_header`): 400 ``invalid_idempotency_key`` on ``POST /ads`` and ``POST /ads/batch``
    (a batch item gets the same code as its own error); ``details``: ``{"header": "Idempotency-Key"}``, with
    ``max`` for a batch's header too long for the keys it derives (:mod:`gamead_core.api.batch_keys`)."""

    status, code = 400, INVALID_KEY_CODE


class DuplicateQueryParameter(ApiError):
    """A query parameter was given more than once (``?limit=1&limit=500``): which one would count is a guess, so
    the request is refused on every route (400); ``details``: ``{"parameter": name}`` (percent-decoded)."""

    status, code = 400, "duplicate_query_parameter"

    @classmethod
    def of(cls, name: str) -> DuplicateQueryParameter:
        return cls(f"the query parameter {name!r} is given more than once: give it once", details={"parameter": name})

    @classmethod
    def unless_one_of(cls, **given: object) -> None:
        """Raise when more than one of ``given`` (the names of one parameter, as sent, → its value or None) is
        given (``?errorClass=x&error_class=y``: which one counts would be a guess; attack42a F2);
        ``details``: ``{"parameter": the first name, "names": every name given}``."""
        names = [name for name, value in given.items() if value is not None]
        if len(names) > 1:
            raise cls(f"the query parameters {' and '.join(map(repr, names))} are one parameter under "
                      f"{len(names)} names: give one of them", details={"parameter": names[0], "names": names})


class UnknownQueryParameter(ApiError):
    """A query parameter the route does not declare (``GET /ads?statu=completed``): a misspelt filter would widen
    the request to everything, so it is refused on every route (400; :mod:`gamead_core.api.query_names`);
    ``details``: ``{"parameter": name, "known": the route's names, sorted}``."""

    status, code = 400, "unknown_query_parameter"

    @classmethod
    def of(cls, name: str, method: str, path: str, known: frozenset[str]) -> UnknownQueryParameter:
        takes = f"takes only {', '.join(sorted(known))}" if known else "takes no query parameter"
        return cls(f"the query parameter {name!r} is not one {method} {path} takes: it {takes}",
                   details={"parameter": name, "known": sorted(known)})


class PayloadTooLarge(ApiError):
    """The body is over ``api.max_body_bytes`` (413)."""

    status, code = 413, "payload_too_large"


class ValidationFailed(ApiError):
    """A field, header or query parameter is invalid (422); ``details``: ``[{"loc", "msg", "type"}]``."""

    status, code = 422, "validation_failed"

    @classmethod
    def unless_window(cls, since: Any, until: Any) -> None:
        """Raise 422 ``validation_failed`` (``loc`` ``since``, ``type`` ``time_window``) when ``since`` is not
        before ``until`` (:func:`gamead_core.times.check_window`): every route that takes both filters."""
        try:
            check_window(since, until)
        except ValueError as exc:
            raise cls(f"since: {exc}", details=[{"loc": "since", "msg": str(exc), "type": "time_window"}]) from None


class BatchTooLarge(ApiError):
    """A ``POST /ads/batch`` holds more ads than ``api.batch_max`` (422)."""

    status, code = 422, "batch_too_large"


class RateLimited(ApiError):
    """Over the caller's token bucket (429); ``headers`` are the limiter's (``Retry-After``, ``RateLimit-*``)."""

    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, details: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, details=details)
        self._headers = dict(headers or {})

    @property
    def headers(self) -> dict[str, str]:
        return self._headers


class ListBusy(ApiError):
    """This API node already runs ``api.list_scans`` filtered scans of the records and has as many again
    waiting (503, ``Retry-After``): a scan reads up to ``api.list_scan_limit`` records, so their number at once
    is bounded, not their callers."""

    status, code = 503, "list_busy"


class ConfirmationRequired(ApiError):
    """A destructive request without ``confirm: true`` (400); ``details`` says what it would have touched."""

    status, code = 400, "confirmation_required"


class JobFinished(ApiError):
    """The operator job has already ended and cannot be cancelled (409)."""

    status, code = 409, "job_finished"


class RepairRunning(ApiError):
    """A doctor repair while another repair job is queued or running (409; one at a time, words58: each of two
    concurrent ``doctor --repair`` ran its own). ``details``: ``jobId``, ``startedBy``, ``createdAt``."""

    status, code = 409, "repair_running"


class JobsNotRunning(ApiError):
    """This API node runs no operator jobs (yet): 503 with the queue's code, as a client retries it alike."""

    status, code = 503, "queue_unavailable"


class StatsUnavailable(ApiError):
    """This API node does not sample stats (its observers are not started): 503."""

    status, code = 503, "stats_unavailable"


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": {"code": code, "message": message, "details": details}}, status, headers)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``('body', 'targetAudience', 0)`` → ``targetAudience.0``."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "(body)"


#: validation problems listed in one error's ``details`` (its message counts the rest): a body naming 150,000
#: unknown keys was answered with 11 MB of details (attack36 F2)
MAX_DETAILS = 20


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's errors (``ValidationError.errors()``) → ``details`` items ``{"loc": "targetAudience.0", "msg":
    …, "type": pydantic's error type}``, one per error, in order, in gamead's words (:func:`detail_words`)."""
    paths = [field_path(err.get("loc", ())) for err in errors]
    return [{"loc": where, "msg": detail_words(err, where), "type": err.get("type")}
            for err, where in zip(errors, paths)]


def validation_message(details: list[dict[str, Any]], more: int = 0) -> str:
    """The ``validation_failed`` message: the first 5 of ``details`` and how many more problems there are (the
    rest of ``details`` and ``more`` not listed in it)."""
    shown = "; ".join(f"{d['loc']}: {d['msg']}" for d in details[:5])
    left = max(len(details) - 5, 0) + more
    return f"the request is invalid: {shown}{f' (and {left} more)' if left else ''}"


def validation_failure(errors: list[dict[str, Any]], omitted: int = 0) -> tuple[str, list[dict[str, Any]]]:
    """``(message, details)`` of a 422 ``validation_failed`` from pydantic's ``errors``: details hold the first
    :data:`MAX_DETAILS`; the message counts every problem (``omitted``: problems not in ``errors`` at all, e.g.
    the unknown keys :func:`gamead_core.api.unknown_keys.trimmed` left out)."""
    details = validation_details(errors[:MAX_DETAILS])
    return validation_message(details, len(errors) - len(details) + omitted), details


def _poke_storage_probe(request: Request) -> None:
    link = getattr(request.app.state, "link", None)
    poke = getattr(link, "poke_storage_probe", None)
    if poke is not None:
        poke()


def _poke_topology_watch(request: Request) -> None:
    watch = getattr(getattr(request.app.state, "link", None), "watch", None)
    if watch is not None:
        watch.poke()


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(GameadError)
    async def _gamead_error(request: Request, exc: GameadError) -> Response:
        status = next((s for cls, s in STATUS_OF.items() if isinstance(exc, cls)), 500)
        wait = RETRY_AFTER_SECONDS if status == 503 else getattr(exc, "retry_after", None)  # a 409 key in process
        headers = {"Retry-After": str(wait)} if wait is not None else None
        if status >= 500:
            left_out = _SERVER_ERRORS.allow(exc.code, time.monotonic())
            if left_out is not None:  # one line per code every few seconds (a fail-over answers thousands)
                log.warning("%s: %s%s", exc.code, mask_urls(exc.message),
                            f" ({left_out} more answered {exc.code} since the last such line)" if left_out else "",
                            extra={"error_code": exc.code, "left_out": left_out})
            if isinstance(exc, (TopologyMissing, NoStreamLeader)):  # a stream or bucket missing, or without a
                # leader (the watch's next check tells which): recreate what is missing now
                _poke_topology_watch(request)
            elif isinstance(exc, QueueUnavailable):  # a failed write may be storage: let the probe look now
                _poke_storage_probe(request)
        if exc.client_message is not None:  # the message may name servers: clients get the class's text
            return error_response(status, exc.code, exc.client_message, None, headers)
        return error_response(status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        message, details = validation_failure(list(exc.errors()))
        return error_response(422, "validation_failed", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, None, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "the server failed to handle the request; it has been logged")
