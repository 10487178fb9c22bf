"""Reading one answer of the API whole, bounded in bytes and in time, and decoding its JSON: the CLI's error
boundary for what comes back (attack36 F3, F5), used by :meth:`gamead_cli.client.ApiClient.send` for every verb.

* :func:`read_whole`: the body, decoded (gzip…) as httpx decodes it, at most ``limit`` bytes
  (``client.max_answer_bytes``, 64 MiB: a 500-ad ``GET /ads`` page is ~3.3 MB) and done by a deadline
  (:data:`ANSWER_TIMEOUTS` × the request's timeout, which bounds each read only). An endless body, or one that
  trickles a byte at a time, is cut there: :class:`~gamead_core.errors.NoAnswer` (exit 3) naming the API and the
  bound, never a process grown to gigabytes or waiting for ever.
* :func:`decode_json`: the body's JSON; one too deeply nested for Python (``RecursionError``) is the same exit 3
  line ("not a gamead answer"), not an unexpected error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from gamead_cli.answer_decoding import BadEncoding, BoundedDecoder, TooLong
from gamead_cli.deadline_http import answer_deadline
from gamead_core.errors import ApiClientError, ApiUnreachable, NoAnswer

#: longest answer body read (bytes, decoded), the default of ``client.max_answer_bytes``
MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: an answer must be whole within this many times its request's timeout (``client.timeout``: that bounds one read)
ANSWER_TIMEOUTS = 3

_NOT_API = "is --api (GAMEAD_API_URL) a gamead API, and no broken proxy in between?"


def size_text(limit: int) -> str:
    """``64 MiB``, ``512 KiB``, ``100 bytes``: a byte bound for people. Pure."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit:,} bytes"


def _cut(url: str, what: str, reads: bool, cause: str, lost: str, waited: float) -> NoAnswer:
    """The error of an answer cut short: :class:`NoAnswer` (exit 3), as for an answer that never came: a write's
    request went out whole, so it may have been carried out; a read changed nothing."""
    outcome = "a read: nothing was changed" if reads else "it may have been carried out"
    error = NoAnswer(f"the gamead API at {url} answered {what} with {cause}: {outcome} — {_NOT_API}")
    error.lost = lost  # type: ignore[attr-defined]  # gamead_cli.api_errors.no_answer's kinds
    error.waited = waited  # type: ignore[attr-defined]
    return error


def answer_bound(timeout: object, client_timeout: float, *, own: str | None = None, left: float | None = None,
                 limit: str = "its time limit") -> tuple[float, str]:
    """Seconds a whole answer may take, and what they come from (errors name it): :data:`ANSWER_TIMEOUTS` × the
    request's ``timeout`` (none: ``client_timeout``, ``client.timeout``); a timeout longer than ``client_timeout``
    (``GET /ads``: ``client.list_timeout``, a page computed for that long) as is; with ``own``, the name of a verb's
    own wait that ``timeout`` is (``gamead doctor``'s check, 300 s), that wait plus ``client_timeout`` for the
    answer to come whole (outage38: it was 3 × 300 s, 15 min); at most ``left`` seconds, the time left of the
    caller's ``limit`` (a lookup's ``client.lookup_for``), and then named so (outage38: such a cut answer said
    "3 × client.timeout"). Pure."""
    t = float(timeout if isinstance(timeout, (int, float)) else client_timeout)
    if own is not None:
        bound, name = t + client_timeout, f"{own}'s {t:g}s + client.timeout"
    elif t > client_timeout:
        bound, name = t, "client.list_timeout"
    else:
        bound, name = ANSWER_TIMEOUTS * t, f"{ANSWER_TIMEOUTS} × client.timeout"
    if left is not None and left < bound:
        return max(0.0, left), f"the time left of {limit}"
    return bound, name


def read_whole(response: httpx.Response, *, url: str, what: str, reads: bool, limit: int,
               deadline: float, waited: float, bound: str = f"{ANSWER_TIMEOUTS} × client.timeout") -> bytes:
    """Read ``response``'s body (opened with ``stream=True``) whole and close it; return its bytes, decoded
    (``Content-Encoding``, every layer bounded: :mod:`gamead_cli.answer_decoding`; httpx's ``response.content``
    holds them too). ``deadline`` is a ``time.monotonic()`` value, ``waited`` the seconds from the request to it
    (said in the error, with ``bound``: the setting it comes from). Raises :class:`NoAnswer` for a body over
    ``limit`` bytes (decoded, or any layer of its encoding), in an encoding it does not decode as, or not whole by
    ``deadline`` (the connection is closed, nothing more is read); httpx's own errors (a read timeout, a connection
    lost) pass through."""
    body = bytearray()  # not a list of chunks: endless 1-byte chunks would cost ~40 bytes each
    decoder = BoundedDecoder(response.headers.get("content-encoding"), limit)
    too_long = f"more than {size_text(limit)} (client.max_answer_bytes): not read past that"
    try:
        if response.is_stream_consumed:  # read by its transport already (httpx.MockTransport): decoded by httpx
            body += response.content
        for raw in () if response.is_stream_consumed else response.iter_raw():
            try:
                body += decoder.decode(raw)
            except TooLong:
                raise _cut(url, what, reads, f"{too_long} (decoding its Content-Encoding)", "garbled", waited) \
                    from None
            except BadEncoding as exc:
                raise _cut(url, what, reads, f"a body that is not the Content-Encoding it names ({exc})", "garbled",
                           waited) from None
            if len(body) > limit:
                raise _cut(url, what, reads, too_long, "garbled", waited)
            if time.monotonic() > deadline:
                raise _cut(url, what, reads, f"an answer not whole after {waited:g}s ({bound}; "
                           f"{len(body):,} bytes came)", "timeout", waited)
    finally:
        response.close()
    content = bytes(body)
    response._content = content  # what httpx's own read() sets: .content, .text and .json() read it
    return content


def stream_pieces(response: httpx.Response, *, url: str, what: str, most: int) -> Iterator[bytes]:
    """A streamed answer's body (a job followed as NDJSON), decoded (``Content-Encoding``) in pieces of at most
    ``most`` bytes each, however much a chunk inflates to (httpx's ``iter_bytes`` made a ``gzip, gzip`` chunk whole
    at once). Raises :class:`NoAnswer` for bytes not in the encoding named; httpx's own errors pass through."""
    decoder = BoundedDecoder(response.headers.get("content-encoding"), most)
    if response.is_stream_consumed:  # read by its transport already (httpx.MockTransport): decoded by httpx
        yield response.content
        return
    for raw in response.iter_raw():
        try:
            yield from decoder.pieces(raw)
        except BadEncoding as exc:
            raise _cut(url, what, True, f"a body that is not the Content-Encoding it names ({exc})", "garbled",
                       0.0) from None


def late(url: str, what: str, reads: bool, waited: float, *, head: bool, sent_whole: bool,
         bound: str = f"{ANSWER_TIMEOUTS} × client.timeout") -> ApiUnreachable:
    """The error of a request not done by its deadline (:mod:`gamead_cli.deadline_http`: a head or body trickled a
    byte at a time, a request body the server does not read): one not written whole "nothing was done"
    (:class:`ApiUnreachable`), else :class:`NoAnswer` (a read: nothing was changed; a write: it may have been
    carried out); ``head``: no answer's head had come whole; ``bound``: the setting ``waited`` comes from."""
    bound = f"{waited:g}s ({bound})"
    if not sent_whole:
        return ApiUnreachable(f"the gamead API at {url} did not take the request {what} whole within {bound}: "
                              f"nothing was done — {_NOT_API}")
    return _cut(url, what, reads, f"an answer not whole after {bound}" + (": not even its head (the status "
                "line and headers)" if head else ""), "timeout", waited)


def redirected(response: httpx.Response, url: str, what: str, reads: bool) -> ApiUnreachable:
    """The error of a 3xx answer (never followed: the token would go with it, perhaps to another host, and a
    gamead API never redirects): one line naming where it pointed (its scheme, host and port only)."""
    try:
        to = httpx.URL(response.headers.get("location", ""))
        where = f" to {to.scheme}://{to.host}:{to.port or ''}" if to.host else " to a path of the same address"
    except (httpx.InvalidURL, UnicodeError):
        where = ""
    where = "".join(c for c in where[:120] if c.isprintable())
    cause = f"a redirect (HTTP {response.status_code}{where}), not followed (the token is never sent on)"
    return _cut(url, what, reads, cause, "garbled", 0.0)


def decode_json(content: bytes, *, url: str, what: str) -> Any:
    """The JSON value of an answer's body. Raises ``ValueError`` for bytes that are not JSON (the caller says
    whether the URL is a gamead API at all) and :class:`ApiUnreachable` (exit 3) for JSON nested deeper than
    Python's recursion limit (``[`` × 200,000: no gamead answer is)."""
    try:
        return json.loads(content)
    except RecursionError:
        raise ApiUnreachable(f"the gamead API at {url} answered {what} with something that is not a gamead answer "
                             f"(JSON nested too deeply) — {_NOT_API}") from None


def answers_like_gamead(http: httpx.Client, url: str, limit: int, timeout: float) -> bool:
    """True if ``GET /healthz`` through ``http`` (whose base URL is ``url``) answers like a gamead API: a JSON object
    with a string ``status`` (200 ok, or 503 while NATS is away) and a ``nats`` member (its link's figures, null
    included), read as any answer is (at most ``limit`` bytes, whole within :data:`ANSWER_TIMEOUTS` × ``timeout``
    seconds); False for anything else, an error included. A ``status`` alone was taken for gamead (attack47 F2):
    nats-server's monitoring ``/healthz`` answers ``{"status":"ok"}`` too, so ``--api`` at the port ``gamead up``
    prints as ``watched on …/healthz`` said ``GET /ads: not found (HTTP 404)``, exit 4."""
    waited = ANSWER_TIMEOUTS * timeout
    try:
        with answer_deadline(time.monotonic() + waited), http.stream("GET", "/healthz") as answer:
            body = decode_json(read_whole(answer, url=url, what="GET /healthz", reads=True, limit=limit,
                                          deadline=time.monotonic() + waited, waited=waited),
                               url=url, what="GET /healthz")
    except (httpx.HTTPError, ValueError, ApiClientError):
        return False
    return isinstance(body, dict) and isinstance(body.get("status"), str) and "nats" in body


__all__ = ["ANSWER_TIMEOUTS", "MAX_ANSWER_BYTES", "answer_bound", "answers_like_gamead", "decode_json", "late",
           "read_whole", "redirected", "size_text", "stream_pieces"]
