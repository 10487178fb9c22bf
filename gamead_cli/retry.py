"""When the CLI's API client sends a request again, and after how long (pure; used by ``gamead_cli.client``).

A request is sent again only when that cannot do anything twice:

* an answer **429** (the API's rate limiter refused it before any route ran) or a connection that was never
  made (refused, connect timeout): always, whatever the method;
* an answer **503** (the queue is unavailable: a submit may or may not have been stored) or a connection lost
  after the request went out (read timeout, reset): only for an idempotent request, i.e. an idempotent method
  of RFC 9110 §9.2.2 (GET, HEAD, OPTIONS, PUT, DELETE), a POST carrying an ``Idempotency-Key``
  (draft-ietf-httpapi-idempotency-key-header: the API answers a repeat with the first result), or one whose
  body keys everything it may create (``keyed``: a ``POST /ads/batch`` whose every ad has its
  ``idempotencyKey``);
* an answer **409** ``idempotency_key_in_process`` (another request with the same ``Idempotency-Key`` is being
  stored right now: draft-ietf-httpapi-idempotency-key-header §2.7; attack38a F3): always, as the request carries
  its key (sent again after ``Retry-After`` it gets that request's answer, nothing twice);
* an answer **502**, **503** or **504** from a proxy or load balancer in front of the API (no gamead error body):
  as a connection lost after the request went out (the proxy may have passed it on), only for an idempotent
  request; during ``gamead submit`` it begins an outage as a refused connection does (outage46's leftover);
* an answer **503** that the API itself gave to a whole ``POST /ads/batch`` (its error body, not a proxy's): the
  route answers so only when NATS took none of the ads ("retry it as it is",
  :mod:`gamead_core.api.routes_batch`; an ad that may be stored gets its own result in a 200 instead).

One ad of a ``POST /ads/batch`` answered 200 may carry its own error: when that error says NATS certainly took
nothing of it (:func:`resendable`: a 503 or 429 code without ``details.adId``), ``gamead submit`` sends those
ads again in a smaller batch, within the same budget, as it would a whole batch answered 503 (a 4 s leader
election left 908 ads "rejected" unretried, attack14b). An ad that may be stored carries its ``adId`` and is
never resent.

The wait honours ``Retry-After`` (RFC 9110 §10.2.3: delay-seconds or an HTTP-date); without one it backs off
``min(cap, base·2^(n−1))`` with full jitter. All retries of one request fit in ``client.retry_for`` seconds:
a wait that would end past that budget is not started and the last answer stands.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from gamead_core.errors import ApiUnreachable, error_text
from gamead_core.worker.backoff import backoff

#: RFC 9110 §9.2.2
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Statuses worth a retry (see the module doc for which requests).
RETRY_STATUSES = frozenset({429, 503})
#: A proxy's or load balancer's answers for an API it could not reach or that did not answer it (without gamead's
#: error body): taken as a lost connection (outage46's leftover, :func:`may_retry`'s ``gateway``)
GATEWAY_STATUSES = frozenset({502, 503, 504})
#: Back-off without a Retry-After: first and largest wait, in seconds.
BACKOFF_BASE = 0.25
BACKOFF_CAP = 4.0
#: Seconds of a caller's time bound (``until``: a lookup's ``client.lookup_for``) a try sent again must still have:
#: a try cut to the bound's last 0.01 s timed out its connect on a loaded machine and blamed the API ("connect timed
#: out after 60s" for a port that refused: CI of cc07fac7); no retry is begun with less.
LEAST_TRY = 1.0


def idempotent(method: str, headers: Mapping[str, str] | None) -> bool:
    """True if sending ``method`` with ``headers`` twice has the effect of sending it once."""
    if method.upper() in IDEMPOTENT_METHODS:
        return True
    return method.upper() == "POST" and any(k.lower() == "idempotency-key" for k in (headers or {}))


def may_retry(method: str, headers: Mapping[str, str] | None, *, status: int | None = None,
              sent: bool = True, took_nothing: bool = False, keyed: bool = False, in_process: bool = False,
              gateway: bool = False) -> bool:
    """Whether a request may be sent again after an answer ``status``, or (``status`` None) after a
    connection error; ``sent``: False if the connection was never made (nothing reached the API);
    ``took_nothing``: the answer is the API's own word that it stored nothing (a whole ``POST /ads/batch``
    answered 503 with gamead's error body), so a 503 may be resent even without an ``Idempotency-Key``;
    ``keyed``: the body carries an idempotency key for everything it may create (a repeat creates nothing);
    ``in_process``: the answer is the API's 409 ``idempotency_key_in_process`` (:data:`IN_PROCESS`);
    ``gateway``: ``status`` (:data:`GATEWAY_STATUSES`) is a proxy's, not the API's: as a connection lost after the
    request went out (the proxy may have passed it on), sent again only where that does nothing twice."""
    once = keyed or idempotent(method, headers)
    if status is None or gateway:
        return not sent or once
    if status == 429 or in_process:
        return True
    return status in RETRY_STATUSES and (once or (status == 503 and took_nothing))


#: Codes of one ad's error in a ``POST /ads/batch`` answer that a whole request would have been retried for (503,
#: 429, 409 in process); with no ``details.adId`` NATS certainly took nothing of that ad (gamead_core.api.routes_batch).
#: Every 503 an ad can get (outage46: ``records_full``, ``topology_changed``, ``topology_error``,
#: ``too_many_connections`` begin a store outage in ``gamead submit`` but their ads were counted rejected at once)
RESENDABLE_CODES = frozenset({"queue_unavailable", "storage_failed", "storage_failing", "topology_missing",
                              "queue_full", "records_full", "topology_changed", "topology_error",
                              "too_many_connections", "rate_limited", "idempotency_key_in_process"})
#: one ad's (or a whole request's 409) code: a request with its key is being stored right now (attack38a F3)
IN_PROCESS = "idempotency_key_in_process"


def resendable(error: object) -> bool:
    """True if ``error``, one ad's ``{"code", "message", "details"}`` in a ``POST /ads/batch`` answer, says NATS
    took nothing of that ad for a passing reason (:data:`RESENDABLE_CODES`, no ``details.adId``), so it may be
    sent again. Pure."""
    if not isinstance(error, Mapping) or error.get("code") not in RESENDABLE_CODES:
        return False
    details = error.get("details")
    return not (isinstance(details, Mapping) and details.get("adId"))


def as_ad_answer(exc: Exception) -> Any:
    """A whole ``POST /ads/batch`` refused (``exc``, its :class:`ApiClientError`) as each ad's own answer,
    ``{"error": {code, message, details}}``, when NATS certainly took nothing of it for a passing reason
    (:func:`resendable`: a 503 store refusal, a 429), so its ads are resent one by one as a batch's refused ads are,
    within the store outage's stop (regress38 F4: a whole batch refused past ``client.retry_for`` inside a 12 s
    outage counted its ads rejected though certainly unsent); ``exc`` itself otherwise. Pure."""
    error = {"code": getattr(exc, "code", None), "message": error_text(exc), "details": getattr(exc, "details", None)}
    return {"error": error} if not isinstance(exc, ApiUnreachable) and resendable(error) else exc


def ad_retry_after(errors: list[Mapping[str, object]]) -> float | None:
    """The longest ``details.retryAfter`` (seconds) among ads' errors (a ``rate_limited`` ad says when tokens come
    back), or None when none says more than 0. Pure."""
    waits = [float(d["retryAfter"]) for e in errors if isinstance(d := e.get("details"), Mapping)  # type: ignore[arg-type]
             and isinstance(d.get("retryAfter"), (int, float)) and not isinstance(d.get("retryAfter"), bool)]
    return max(waits) if waits and max(waits) > 0 else None  # 0 says nothing: the back-off then


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (≥ 0), from delay-seconds or an HTTP-date
    (``now``: epoch seconds); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def next_wait(attempt: int, retry_after: float | None, remaining: float, *,
              uniform: Callable[[float, float], float] = random.uniform) -> float | None:
    """Seconds to wait before sending again after failed attempt ``attempt`` (1-based), or None to give up:
    the ``retry_after`` the API asked for, else the jittered back-off; None when that wait would not end
    within the ``remaining`` seconds of the budget."""
    wait = retry_after if retry_after is not None else backoff(attempt, base=BACKOFF_BASE, cap=BACKOFF_CAP,
                                                              uniform=uniform)
    return wait if wait < remaining else None


def held_wait(wait: float | None, held: float | None) -> float | None:
    """``wait`` (:func:`next_wait`'s: None when it would not end within its budget) while an outage under way stops
    the run in ``held`` seconds (``gamead submit``'s :meth:`~gamead_cli.submit.outage.Outage.left`; None: none is
    under way): at most ``held``, and ``held`` when it did not fit — the try then comes at the stop, where the
    outage says whether it is cut, not before it (outage46: given up a few seconds before, their ads were counted
    rejected, or not sent though the API came back within the time the outage's line promised); 0 when the stop
    is already due (read just after the caller found it not: the look at once then cuts). Pure."""
    if held is None:
        return wait
    held = max(0.0, held)
    return held if wait is None else min(wait, held)


def outage_wait(attempt: int, retry_after: float | None, remaining: float, held: float | None, *,
                uniform: Callable[[float, float], float] = random.uniform) -> float | None:
    """The wait before try ``attempt`` + 1: with no outage under way (``held`` None), :func:`next_wait`'s within
    ``remaining`` (None: give up); while one is (``held``: seconds to its stop), the back-off (or ``retry_after``)
    whatever own budget is left, ended at the stop (:func:`held_wait`): never None, and never the whole time to
    the stop without a try (review47 F8: a request or a batch's refused ads past their own ``client.retry_for``
    waited blind to the stop; an API back meanwhile went unseen, and with every request out so waiting the run
    stopped as if it were still away). Pure."""
    if held is None:
        return next_wait(attempt, retry_after, remaining, uniform=uniform)
    return held_wait(next_wait(attempt, retry_after, math.inf, uniform=uniform), held)
