"""Where the CLI's API client turns httpx errors and the API's error answers into gamead errors (the boundary of
:class:`gamead_cli.client.ApiClient`):

* connection refused, DNS failure, timeouts → :class:`ApiUnreachable` (names the URL, the cause, a hint)
* a request that went out and got no answer → :class:`NoAnswer` (it may have been carried out), and so does a
  write a proxy in front of the API answered 502, 503 or 504 (:func:`by_proxy`)
* ``{"error": {"code", "message", "details"}}`` with 404 → :class:`NotFound`
* any other error answer → :class:`ApiClientError` (``code`` = the API's code, ``status`` = HTTP status)

Builds the errors, never raises them, and sends nothing (the client raises what these return)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from gamead_cli import retry, service_clock
from gamead_cli.api_words import cli_words
from gamead_cli.deadline_http import proxy_for
from gamead_cli.formats import took
from gamead_core.errors import (
    ApiClientError,
    ApiUnreachable,
    ConfigError,
    NoAnswer,
    NotFound,
    error_text,
)

HINT = "is `gamead up` or `gamead serve` running? Set --api or GAMEAD_API_URL."
_MAX_FIELD_ERRORS = 5
#: API URL → where it came from when the operator did not name it and it may not answer (:func:`from_stopped_stack`)
_SOURCES: dict[str, str] = {}
#: the line :func:`say_source` is to say before the first request, if one (:func:`from_default`)
_UNSAID: dict[str, tuple[str, str]] = {}


def from_stopped_stack(url: str, state_file: str) -> None:
    """Note that ``url`` is the ``apiUrl`` of ``state_file``, the ``gamead-up.json`` of a ``gamead up`` that is not
    running there now: :func:`unreachable` then names the file and says so, instead of leaving the operator to
    wonder where a port they never typed came from (review41b, after attack41b F5)."""
    _SOURCES[url.rstrip("/")] = (f"it is the apiUrl of {state_file}, of a gamead up that is not running there now: "
                                 "start it again (gamead up), or set --api or GAMEAD_API_URL for another API")


#: where the API URL in use came from when no source chose it: the built-in default (:func:`from_default`)
DEFAULT_SOURCE = ("the default (no --api, GAMEAD_API_URL, client.api_url in the config, nor a gamead up stack here "
                  "or above)")


def from_default(url: str, named: str) -> None:
    """Note that ``url`` (``named``: as :func:`gamead_cli.options.api_named` shows it) is the built-in default
    ``client.api_url``, no source having chosen it: :func:`say_source` then says so once, one dim line on stderr
    before the first request goes out, ``· API http://127.0.0.1:8080: the default (…) — whichever process holds
    that port``, and :func:`unreachable` names it too: ``… (connection refused) — it is the default, said above:
    is `gamead up` …`` once that line was said, the whole statement (``— it is the default (…): is …``) if not
    (whichapi43, after attack43a F3: a table from whatever stack held 8080 read as this directory's; left44, after
    attack43c F1: the red line repeated the note's 110 characters right under it)."""
    key = url.rstrip("/")
    _SOURCES[key] = f"it is {DEFAULT_SOURCE}: {HINT}"
    _UNSAID["default"] = (key, f"· {named}: {DEFAULT_SOURCE} — whichever process holds that port")


def unsaid_forgotten() -> None:
    """Forget the line :func:`from_default` left unsaid and where each URL came from (:func:`from_default`,
    :func:`from_stopped_stack`): a new resolution of the API URL decides afresh (one process running several
    commands: the tests; before, a URL named by ``--api`` after the default was still called the default in its red
    line: review44 F4)."""
    _UNSAID.clear()
    _SOURCES.clear()


def say_source() -> None:
    """Say the line :func:`from_default` left, if any, once per process (stderr, dim: stdout stays the output's);
    thread-safe (``dict.pop``). Called by :class:`gamead_cli.client.ApiClient` before each request, and by the
    full-screen ``gamead top`` before it takes the screen."""
    if (unsaid := _UNSAID.pop("default", None)) is not None:
        from gamead_cli.output import note_line
        url, line = unsaid
        note_line(line)
        if url in _SOURCES:  # said: the red line refers to it, not says it again (from_default)
            _SOURCES[url] = f"it is the default, said above: {HINT}"


def connect_cause(exc: Exception) -> str:
    """The cause of a connection that failed, in the words the outage lines and red lines say (``connection
    refused``, ``connection reset``: an API that died while the connection was being made), else the error's text."""
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "reset by peer" in text:
        return "connection reset"
    if any(
        s in text
        for s in ("name or service not known", "nodename nor servname", "getaddrinfo", "name resolution")
    ):
        return "host name not found"
    if "unreachable" in text:
        return "network unreachable"
    return error_text(exc)


def unsendable(method: str, path: str, exc: Exception) -> Exception:
    """A request httpx cannot even build from a valid API URL (``URL component 'query' too long``): a value given
    to the command makes it, so bad usage (exit 2), sent nowhere; never blamed on the API URL."""
    import typer

    return typer.BadParameter(f"{method} {path} cannot be sent: {exc}; a value given to this command is too long or "
                              "malformed for a URL (nothing was sent)")


def unreachable(url: str, exc: Exception, timeout: float, *, cut: str | None = None) -> ApiUnreachable:
    """The error of a request that never reached the API at ``url``, saying why (``exc``; ``timeout``: the seconds
    its try was given, and ``cut``: the name of the caller's bound that cut them, said with them)."""
    by = f", the time left of {cut}" if cut else ""
    if isinstance(exc, httpx.ConnectTimeout):
        cause = f"connect timed out after {timeout:g}s{by}"
    elif isinstance(exc, httpx.TimeoutException):
        cause = f"no answer within {timeout:g}s{by}"
    elif isinstance(exc, httpx.ConnectError):
        cause = connect_cause(exc)
    else:
        cause = error_text(exc)
    return ApiUnreachable(f"cannot reach the gamead API at {url}{_through_proxy(url)} ({cause}) — "
                          f"{_SOURCES.get(url, HINT)}")


def _through_proxy(url: str) -> str:
    """`` through the proxy http://host:port …`` when the environment names one for ``url`` (its credentials not
    shown), else "": a refused connection is then the proxy's, not the API's."""
    try:
        proxy = proxy_for(url)
    except (ConfigError, httpx.InvalidURL):
        return ""
    if proxy is None:
        return ""
    at = httpx.URL(proxy)
    return (f" through the proxy {at.scheme}://{at.host}:{at.port or ''} the environment names (HTTP_PROXY, "
            f"HTTPS_PROXY, ALL_PROXY; NO_PROXY skips it)")


def changes_nothing(method: str, kw: dict[str, Any]) -> bool:
    """Whether the request only reads: a GET/HEAD/OPTIONS, or a dry run (``"dryRun": true`` in its JSON body).
    Pure."""
    body = kw.get("json")
    return method.upper() in ("GET", "HEAD", "OPTIONS") or (isinstance(body, dict) and body.get("dryRun") is True)


def lost_kind(exc: Exception) -> str | None:
    """How a connection that was made lost its request's answer: ``"timeout"`` (no answer within the timeout),
    ``"reset"`` (reset by the API or something between: a proxy, a load balancer), ``"closed"`` (closed without
    an answer); None when that is not what ``exc`` says (no connection came free; an answer that is not HTTP at
    all, as from a port that is no web server). Pure."""
    if isinstance(exc, httpx.PoolTimeout):
        return None
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    text = str(exc).lower()
    if isinstance(exc, httpx.NetworkError):
        return "reset" if "reset" in text else "closed"
    if isinstance(exc, httpx.RemoteProtocolError) and ("disconnected" in text or "closed" in text):
        return "closed"
    return None


#: what each :func:`lost_kind` says, in a line
LOST_TEXT = {"timeout": "no answer within {timeout:g}s",
             "reset": "connection reset before the answer came",  # by the API, or a proxy between
             "closed": "connection closed without an answer"}


def no_answer(url: str, exc: Exception, timeout: float, *, reads: bool = False,
              sent_whole: bool = True) -> ApiUnreachable:
    """The request went out and no answer came (read timeout, connection closed or reset while waiting): a write
    "may have been carried out" (:class:`NoAnswer`); a read (``reads``: :func:`changes_nothing`) changed nothing
    (attack26 F6). A request not ``sent_whole`` (the connection failed while its head or body was being written)
    cannot have been carried out, the API acting on a request only once it has it whole: :class:`ApiUnreachable`
    saying "nothing was done", so a submit counts its ad rejected, not maybe queued (attack29b F2). The
    :class:`NoAnswer` carries ``lost`` (:func:`lost_kind`, ``garbled`` for an answer that is not HTTP) and
    ``waited`` (``timeout``, seconds)."""
    kind = lost_kind(exc)
    if kind is not None:
        cause = LOST_TEXT[kind].format(timeout=timeout) + ("" if kind == "timeout" else f": {error_text(exc)}")
    elif isinstance(exc, httpx.RemoteProtocolError):
        cause = f"an answer that is not HTTP: {error_text(exc)}"
    else:
        cause = f"connection lost without an answer: {error_text(exc)}"
    if not sent_whole:
        return ApiUnreachable(f"the gamead API at {url} closed the connection before the request was sent whole "
                              f"({cause}): nothing was done — is the API overloaded or stopped? (--api / "
                              "GAMEAD_API_URL names it)")
    outcome = "a read: nothing was changed" if reads else "it may have been carried out"
    error = NoAnswer(f"the gamead API at {url} got the request but gave no answer ({cause}): {outcome} — is the "
                     "API overloaded or stopped? (--api / GAMEAD_API_URL names it)")
    error.lost = kind or "garbled"  # type: ignore[attr-defined]  # how: LOST_TEXT's kinds, or not HTTP
    error.waited = timeout  # type: ignore[attr-defined]  # seconds the answer was waited for (a timeout's)
    return error


def proxy_cause(response: httpx.Response) -> str:
    """``HTTP 503 from a proxy (no healthy upstream)``: a proxy's or load balancer's answer for the API it could not
    reach (:data:`gamead_cli.retry.GATEWAY_STATUSES`, no gamead error body), as an outage's cause says it."""
    snippet = " ".join(re.sub(r"<[^>]*>", " ", response.text).split())[:60]  # an HTML page's words
    return f"HTTP {response.status_code} from a proxy" + (f" ({snippet})" if snippet else "")


def by_proxy(url: str, response: httpx.Response, *, reads: bool) -> ApiClientError:
    """The error of a request a proxy in front of the API answered 502, 503 or 504 (:func:`proxy_cause`): a read's
    as any error answer (:func:`error_from_response`); a write's :class:`NoAnswer` ``lost`` ``gateway``: the API
    never answered, and the proxy may have passed the request on (a 504: it did), so it may have been carried out
    (outage46's leftover: ``gamead submit`` counted such ads rejected, refused by an API that never saw them)."""
    if reads:
        return error_from_response(response)
    error = NoAnswer(f"the gamead API at {url} gave no answer: {proxy_cause(response)} in front of it: it may "
                     "have been carried out — is the API behind the proxy running? (--api / GAMEAD_API_URL names it)",
                     status=response.status_code)
    error.lost = "gateway"  # type: ignore[attr-defined]  # no_answer's kinds (LOST_WORDS)
    return error


def _field_errors(details: Any) -> str:
    """``[{"loc": "targetAudience.0", "msg": "…"}, …]`` → ``targetAudience.0: …; duration: …``."""
    if not isinstance(details, list):
        return ""
    parts: list[str] = []
    for item in details:
        if not isinstance(item, Mapping):
            continue
        loc = item.get("loc", "")
        if isinstance(loc, (list, tuple)):
            loc = ".".join(str(p) for p in loc)
        msg = item.get("msg", "invalid")
        parts.append(f"{loc}: {msg}" if loc else str(msg))
    shown = parts[:_MAX_FIELD_ERRORS]
    more = len(parts) - len(shown)
    return "; ".join(shown) + (f"; (+{more} more)" if more > 0 else "")


#: the API's "retry after the time in Retry-After" (gamead_core.errors client_message), said by :func:`_try_again`
_RETRY_CLAUSE = re.compile(r"[;,.]?\s*retry after (the time in )?`?Retry-After`?\.?\s*$", re.IGNORECASE)
#: the API's words for NATS away (gamead_core.errors client_message) → words true of any request, a read of
#: records (``gamead ads list``) as much as a submit (reviewer V10, N9: "the queue is unavailable" for a read)
_NATS_WORDS = {
    "the queue is unavailable right now": "the API cannot reach NATS right now",
    "the queue cannot store new data right now": "NATS cannot store new data right now (its storage is full or "
                                                 "failing)",
    "the queue is being repaired": "the API is recreating a NATS stream or bucket it needs",
}


def _without_retry_clause(message: str) -> str:
    """The API's ``message`` of an answer that says when to retry (``Retry-After``), without its own "retry after
    the time in Retry-After" (the CLI says the wait once, in seconds) and, for NATS away, in words that fit any
    request. Pure."""
    bare = _RETRY_CLAUSE.sub("", message).strip()
    return _NATS_WORDS.get(bare, bare)


def _try_again(value: str) -> str:
    """``try again in 2.0 s`` from a ``Retry-After`` value (seconds or an HTTP-date); ``try again later`` when it
    cannot be read."""
    seconds = retry.retry_after_seconds(value, service_clock.now())  # an HTTP-date is the service's time
    if seconds is None:
        return "try again later"
    return "try again now" if seconds == 0 else f"try again in {took(seconds)}"


def _error_body(response: httpx.Response) -> dict[str, Any] | None:
    """The ``error`` object of gamead's error body ``{"error": {"code", "message", "details"}}``; None when the
    answer has none (a proxy's page, not JSON)."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply (attack36 F5)
        return None
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else None


def error_from_response(response: httpx.Response, again: str = "") -> ApiClientError | NotFound:
    """Turn an HTTP error answer into the matching gamead error (not raised); an API path its message names to look
    at named as the gamead command (:func:`gamead_cli.api_words.cli_words`, ``again``: the flags that reach the API)."""
    status = response.status_code
    err = _error_body(response)
    if err is None:
        snippet = " ".join(response.text.split())[:120]
        what = f"{response.request.method} {response.request.url.path}"
        if status == 404:
            return NotFound(f"{what}: not found (HTTP 404)")
        message = f"API answered HTTP {status} to {what}" + (f": {snippet}" if snippet else "")
        return ApiClientError(message, status=status, api_code=f"http_{status}")

    code = str(err.get("code") or f"http_{status}")
    message = cli_words(str(err.get("message") or response.reason_phrase or "error"), again)
    details = err.get("details")
    if status == 404:  # the API's own code kept (worker_not_live): -o json's error.code said not_found (probe49)
        return NotFound(message, details=details, code=code)
    fields = _field_errors(details) if status == 422 else ""
    if fields and fields.split("; ")[0] not in message:  # the API may already name them
        message = f"{message}: {fields}"
    wait = response.headers.get("Retry-After")
    if wait is None:
        text = f"{message} [{code}, HTTP {status}]"
    else:
        text = f"{_without_retry_clause(message)} [{code}]; {_try_again(wait)}"
    if status in (401, 403):
        text += " — set GAMEAD_TOKEN (or client.token in the config file)"
    return ApiClientError(text, status=status, details=details, api_code=code)  # e.g. "validation_failed"


def in_process(response: httpx.Response) -> bool:
    """True if an answer is the API's 409 ``idempotency_key_in_process``: another request with this request's
    Idempotency-Key is being stored right now; sent again after its ``Retry-After`` it gets that one's answer
    (:data:`gamead_cli.retry.IN_PROCESS`; attack38a F3)."""
    return response.status_code == 409 and (_error_body(response) or {}).get("code") == retry.IN_PROCESS


def from_proxy(response: httpx.Response) -> bool:
    """True if ``response`` is a proxy's 502, 503 or 504 for the API behind it
    (:data:`gamead_cli.retry.GATEWAY_STATUSES` without gamead's error body, :func:`from_gamead`): the API gave no
    answer."""
    return response.status_code in retry.GATEWAY_STATUSES and not from_gamead(response)


def from_gamead(response: httpx.Response) -> bool:
    """True if an error answer carries gamead's error body ``{"error": {"code": …}}`` (the API's own answer, not a
    proxy's in front of it)."""
    err = _error_body(response)
    return err is not None and bool(err.get("code")) and str(err["code"]) != f"http_{response.status_code}"
