"""What each read of the API answers, checked once where every answer comes in (attack36 F4).

An answer that is JSON but not the shape a verb reads (``{"items": "nope"}`` from a proxy, a stub, another
service at ``--api``, or a gamead API of another version that changed a field) was "unexpected AttributeError"
(exit 1) deep in a verb's view, or for ``gamead scale status`` a status made of nothing (exit 0). Here each route
the CLI reads is checked against the pydantic model the API itself documents it with (``response_model`` of its
route: :mod:`gamead_core.api.schemas`, :mod:`gamead_core.models`, :mod:`gamead_core.jobs.model`); an answer that
does not fit is :class:`~gamead_core.errors.ApiUnreachable` (exit 3, README: "``--api`` is not a gamead API"),
naming the API, the request, what was expected and the first field that is wrong. So is each write's answer
(client37: ``scale set`` on ``{"override": 1}`` was "unexpected AttributeError", exit 1, ``submit`` printed
"accepted ad 5", exit 0), its own model (a dry run's too), but as :class:`~gamead_core.errors.NoAnswer`: the
request went out whole and what answered it is unknown, so "it may have been carried out" (``gamead submit``
counts such a batch's ads as may be queued, never accepted nor rejected). Every other answer must at least be a
JSON object (:func:`check`). The verbs get the answer as it came (the model only checks it).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from gamead_core.errors import ApiUnreachable, NoAnswer

#: (method, path pattern, where the model is — ``module:Name``, or ``:Name`` for :func:`_local_model`'s —, what it is
#: for people); a path's ids are URL-quoted, without ``/``
_ROUTES: tuple[tuple[str, str, str, str], ...] = (
    ("GET", r"/ads", "gamead_core.api.schemas:AdPage", "a page of ads"),
    ("GET", r"/ads/[^/]+", "gamead_core.models:AdRecord", "an ad's record"),
    ("GET", r"/v1/workers", "gamead_core.api.schemas:WorkersDocument", "a list of the registry's nodes"),
    ("GET", r"/v1/stats", "gamead_core.api.schemas:StatsDocument", "the queue's statistics"),
    ("GET", r"/v1/scale", "gamead_core.api.schemas:ScaleDocument", "the autoscaler's status"),
    ("GET", r"/v1/dlq", "gamead_core.api.schemas:DlqPage", "a page of DLQ entries"),
    ("GET", r"/v1/dlq/[^/]+", "gamead_core.models:DlqEntry", "a DLQ entry"),
    ("GET", r"/v1/jobs", "gamead_core.api.schemas:JobPage", "a page of jobs"),
    ("GET", r"/v1/jobs/[^/]+", "gamead_core.jobs.model:Job", "a job"),
    ("GET", r"/v1/doctor", ":DoctorReport", "a doctor's report"),
    ("GET", r"/v1/audit", ":AuditPage", "a page of the audit trail"),
    ("GET", r"/v1/whoami", ":Whoami", "who the caller is"),
    ("GET", r"/v1/levels/\d+/oldest", ":OldestPage", "a level's oldest ads"),
    ("POST", r"/ads", "gamead_core.models:AdAccepted", "an ad's acceptance"),
    ("POST", r"/ads/batch", ":AdBatchResult", "a batch's results"),
    ("POST", r"/v1/scale/override", "gamead_core.api.schemas:OverrideSet", "the override set"),
    ("DELETE", r"/v1/scale/override", "gamead_core.api.schemas:OverrideCleared", "the override cleared"),
    ("POST", r"/v1/dlq/(replay|purge|import)", "gamead_core.jobs.model:Job", "a job"),
    ("POST", r"/v1/jobs/[^/]+/cancel", "gamead_core.jobs.model:Job", "a job"),
    ("POST", r"/v1/doctor/repair", "gamead_core.jobs.model:Job", "a job"),
    ("POST", r"/v1/workers/[^/]+/(quiet|resume)", ":WorkerControl", "a worker's answer"),
    ("POST dry", r"/v1/dlq/(replay|purge)", "gamead_core.api.schemas:DryRun", "a dry run's count"),
    ("POST dry", r"/v1/dlq/import", "gamead_core.api.schemas:ImportChecked", "an import's check"),
)


@cache
def _model(where: str) -> Any:
    """The model class at ``module:Name``, or this module's own (:func:`_local_model`) at ``:Name`` (imported or
    built when a command first needs it: ``gamead --help`` loads none)."""
    import importlib

    module, name = where.split(":")
    return getattr(importlib.import_module(module), name) if module else _local_model(name)


def _route(method: str, path: str) -> tuple[str, str] | None:
    """(model location, what) of the route ``method path`` answers (``method`` upper-case, ``POST dry`` for a dry
    run), or None for one not checked. Pure."""
    for verb, pattern, where, what in _ROUTES:
        if verb == method and re.fullmatch(pattern, path):
            return where, what
    return None


def _first_problem(exc: Any) -> str:
    """``items.0.status: Input should be 'queued', …`` of a pydantic ``ValidationError``: where and what, no value
    (a hostile answer's text is not echoed), cut to 160 characters. Pure."""
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return "does not fit"
    first = errors[0]
    loc = ".".join(str(p)[:40] for p in first.get("loc", ()))
    text = f"{loc}: {first.get('msg', 'invalid')}" if loc else str(first.get("msg", "invalid"))
    more = f"; and {len(errors) - 1} more" if len(errors) > 1 else ""
    return " ".join((text[:160] + more).split())


def not_a(url: str, method: str, path: str, what: str, why: str, reads: bool = True) -> ApiUnreachable:
    """The exit-3 error of an answer that is not what the request reads; of a write (not ``reads``), a
    :class:`NoAnswer` (``lost`` ``unreadable``): it may have been carried out."""
    if reads:
        return ApiUnreachable(f"the API at {url} answered {method} {path} with something that is not {what} ({why}) "
                              "— is --api (GAMEAD_API_URL) a gamead API of this version?")
    error = NoAnswer(f"the API at {url} answered {method} {path} with something that is not {what} ({why}): it may "
                     "have been carried out — is --api (GAMEAD_API_URL) a gamead API of this version?")
    error.lost = "unreadable"  # type: ignore[attr-defined]  # gamead_cli.api_errors.no_answer's kinds
    return error


def check(url: str, method: str, path: str, body: Any, *, reads: bool = True, dry: bool = False) -> Any:
    """Return ``body`` (an answer's decoded JSON) when it fits what ``method path`` answers (``dry``: a dry run's
    answer, ``"dryRun": true``); raise :class:`ApiUnreachable` (exit 3) naming the request and the first field that
    does not, for a write (not ``reads``) :class:`NoAnswer` (:func:`not_a`). An empty body (None) is no answer of
    a listed route; the answers of routes not listed need only be JSON objects (every answer of the API is one),
    or empty."""
    route = (dry and _route(f"{method.upper()} dry", path)) or _route(method.upper(), path)
    if route is None:
        if body is not None and not isinstance(body, dict):
            raise not_a(url, method, path, "a JSON object", f"a JSON {type(body).__name__}", reads)
        return body
    if body is None:
        raise not_a(url, method, path, route[1], "an empty body", reads)
    from pydantic import ValidationError

    from gamead_core.models import STORED

    where, what = route
    try:  # read as stored text is read: an ad an older rule let in, or a newer gamead's extra field, still fits
        _model(where).model_validate(body, context=STORED)
    except ValidationError as exc:
        raise not_a(url, method, path, what, _first_problem(exc), reads) from None
    except RecursionError:
        raise not_a(url, method, path, what, "nested too deeply", reads) from None
    return body


def _local_model(name: str) -> Any:
    """The model of an answer whose API model lives in its route's module (which loads FastAPI and NATS: not for a
    CLI command): the fields the CLI reads of it, the rest as it comes. Built when first asked for."""
    from pydantic import ConfigDict, create_model

    if name == "AuditPage":  # routes_audit.AuditPageDoc
        from gamead_core.audit.model import AuditRecord

        fields: dict[str, Any] = {"items": (list[AuditRecord], ...), "count": (int, ...)}
    elif name == "Whoami":  # routes_audit.Whoami
        fields = {"name": (str, ...), "authenticated": (bool, ...), "mayAct": (bool, ...)}
    elif name == "AdBatchResult":  # batch_models.AdBatchResult (which loads FastAPI): an ad's 202 or its error
        from gamead_core.models import AdAccepted

        error = create_model("ErrorItem", __config__=ConfigDict(extra="allow"),
                             error=(create_model("ErrorDetail", __config__=ConfigDict(extra="allow"), code=(str, ...),
                                                 message=(str, ...)), ...))
        fields = {"results": (list[AdAccepted | error], ...), "accepted": (int, ...),  # type: ignore[valid-type]
                  "duplicates": (int, ...), "rejected": (int, ...)}
    elif name == "WorkerControl":  # routes_workers.WorkerControlAnswer
        fields = {"workerId": (str, ...), "quiet": (bool, ...), "changed": (bool, ...), "inFlight": (int, ...)}
    elif name == "OldestPage":  # routes_levels.OldestPage
        fields = {"level": (int, ...), "count": (int, ...), "items": (list[dict[str, Any]], ...)}
    else:  # GET /v1/doctor: what ``gamead doctor`` reads of its report
        fields = {"findings": (list[dict[str, Any]], ...)}
    return create_model(name, __config__=ConfigDict(extra="allow"), **fields)


__all__ = ["check", "not_a"]
