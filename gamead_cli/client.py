"""Synchronous client of the gamead HTTP API, used by every CLI command that talks to a running service.

This module and :mod:`gamead_cli.api_errors` are the one boundary where httpx errors become gamead errors:

* connection refused, DNS failure, timeouts → :class:`ApiUnreachable` (names the URL, the cause, a hint)
* ``{"error": {"code", "message", "details"}}`` with 404 → :class:`NotFound`
* any other error answer → :class:`ApiClientError` (``code`` = the API's code, ``status`` = HTTP status)

429, 503 and lost connections are retried first where that is safe (:mod:`gamead_cli.retry`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import weakref
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self

import httpx

from gamead_cli import answer_shapes, pacing, retry, service_clock
from gamead_cli.ad_calls import AdCalls
from gamead_cli.answers import (MAX_ANSWER_BYTES, answer_bound, answers_like_gamead, decode_json, late, read_whole,
                                redirected)
from gamead_cli.api_errors import (by_proxy, changes_nothing, connect_cause, error_from_response, from_proxy,
                                   in_process, lost_kind, no_answer, proxy_cause, say_source, unreachable, unsendable)
from gamead_cli.deadline_http import DeadlineTransport, answer_deadline
from gamead_cli.output import note_line
from gamead_cli.speaks_first import first_words, not_http
from gamead_cli.streaming import StreamCalls
from gamead_cli.unsent import Unsent
from gamead_core import clock
from gamead_core.errors import ApiClientError, ApiUnreachable, NotFound

if TYPE_CHECKING:
    from gamead_core.config import ClientSettings


class ApiClient(AdCalls, StreamCalls):
    """A thin, typed wrapper over ``httpx.Client`` that speaks the gamead wire format (camelCase JSON).

    Thread-safe: ``submit --count`` shares one instance between its sender threads."""

    def __init__(
        self,
        api_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        max_connections: int = 32,
        transport: httpx.BaseTransport | None = None,
        retry_for: float = 0.0,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        list_timeout: float = 120.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        #: seconds GET /ads (a whole-bucket read) waits for its answer: client.list_timeout, at least ``timeout``
        self.list_timeout = max(timeout, list_timeout)
        self.max_answer_bytes = max_answer_bytes  #: longest answer body read (:mod:`gamead_cli.answers`)
        self.retry_for = retry_for  #: seconds all the retries of one request may take (0: never retry)
        self.retried = 0  #: requests sent again so far (a 429, a 503 or a lost connection)
        #: the flags a printed next command needs to reach this API again (:func:`gamead_cli.options.reach_again`)
        self.again = ""
        self._reached = False  #: has the API answered this client yet?
        self._connected = False  #: has a TCP connection to it been made (something listens at api_url)?
        self._tries = threading.local()  #: this thread's last request: ``lost``, how a try's answer was lost
        self._own = transport is not None  #: a caller's transport (tests): no socket of ours is opened beside it
        self._through = 0.0  #: monotonic time of the last answer but a 429 (a request the rate limiter let through)
        self._limited_said = False  #: the rate-limit line said (once a command: :meth:`_say_limited`)
        #: told of the API going away and coming back (``gamead submit``'s :class:`gamead_cli.submit.outage.Outage`):
        #: ``refused(cause) -> bool`` at each connection not made once it had answered or been connected (False: do not
        #: wait to retry it), ``answered()`` at each answer, ``left()``: seconds to its stop, which the retries wait for
        self.watch: Any = None
        self._lock = threading.Lock()
        self._cancelled = threading.Event()  #: set by :meth:`cancel_retries` (Ctrl-C): no more waits to retry
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()  #: connected ones, for :meth:`abort`
        self._verified: bool | None = None  # does api_url answer like a gamead API? (asked on a 404)
        headers = {"Accept": "application/json", "User-Agent": "gamead-cli",
                   **({"Authorization": f"Bearer {token}"} if token else {})}
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        try:  # every request whole by a deadline (deadline_http: a head or body trickled a byte at a time)
            self._http = httpx.Client(base_url=self.api_url, headers=headers, timeout=timeout, limits=limits,
                                      transport=transport or DeadlineTransport.for_api(limits, self.api_url))
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise ApiClientError(f"invalid API URL {api_url!r}: {exc} — set --api or GAMEAD_API_URL") from exc

    @classmethod
    def from_settings(cls, settings: ClientSettings, **kw: Any) -> ApiClient:
        token = settings.token.get_secret_value() if settings.token else None
        return cls(settings.api_url, token=token, timeout=settings.timeout,
                   **{"retry_for": settings.retry_for, "max_answer_bytes": settings.max_answer_bytes,
                      "list_timeout": settings.list_timeout, **kw})

    # --- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the one request path ----------------------------------------------------------------------

    def send(self, method: str, path: str, *, whole_503_took_nothing: bool = False, keyed: bool = False,
             until: float | None = None, until_name: str = "its time limit", own: str | None = None,
             **kw: Any) -> httpx.Response:
        """Send one request; return the successful response or raise the matching gamead error.

        A 429, a 503 or a connection error is sent again within ``retry_for`` seconds (a 429: of this client's last
        request the rate limiter let through, when later: :mod:`gamead_cli.pacing`) when that cannot do
        anything twice (:mod:`gamead_cli.retry`: GET and other idempotent methods, a POST with an
        ``Idempotency-Key``; any request refused by the rate limiter or never connected; with
        ``whole_503_took_nothing``, a route whose own 503 means it stored nothing, when the 503 carries gamead's
        error body), honouring ``Retry-After``; with ``keyed``, a body that keys everything it may create (every
        ad of a batch has its ``idempotencyKey``). A connection that cannot be made before the API ever answered
        this client, nor was connected to, fails at once (wrong URL, nothing running): waiting is for an API that
        was there and went away; a connection made and then lost (reset, closed without an answer, timed out)
        shows it there. Only the last answer or error is raised: :class:`NoAnswer` when the request went out and
        no answer came (it may have been carried out; its ``lost`` says how: ``timeout``, ``reset``, ``closed``),
        :class:`ApiUnreachable` when it never reached the API. ``until`` (a ``time.monotonic()`` value) bounds the
        whole request: no retry waits past it, nor begins with less than :data:`gamead_cli.retry.LEAST_TRY` s of it
        left, and each try's timeout is cut to the seconds left (a lookup's time bound: review30b F4; ``until_name``
        names it in errors); a try it cut whose connect timed out raises the refusal the API gave before, if any.
        Each answer is read whole within ``client.max_answer_bytes`` and :func:`gamead_cli.answers.answer_bound`
        (:data:`ANSWER_TIMEOUTS` × its timeout; ``own``: the name of a verb's own wait, then that wait +
        ``client.timeout``), else :class:`NoAnswer` (:func:`gamead_cli.answers.read_whole`: attack36 F3)."""
        say_source()  # the URL is the built-in default: said once, before the first request (whichapi43)
        begun = time.monotonic()
        deadline = pacing.retries_end(0, begun, 0.0, self.retry_for, until)  # a lost connection's (an answer's: below)
        headers, attempt, earlier = kw.get("headers"), 0, None  # earlier: the last connection error seen
        self._tries.lost = ""
        while True:
            attempt += 1
            if until is not None:
                kw["timeout"] = max(0.01, min(self.timeout, until - time.monotonic()))
            took = t if isinstance(t := kw.get("timeout"), (int, float)) else self.timeout  # this try's timeout
            cut = until_name if until is not None and took < self.timeout else None  # by the caller's bound
            unsent = Unsent(self._opened)  # its head or body could not be written whole: nothing can have been done
            sent, started, response = clock.local(), time.monotonic(), None
            waited, bound = answer_bound(kw.get("timeout"), self.timeout, own=own, limit=until_name,
                                         left=None if until is None else until - started)
            answer_by, reads = min(started + waited, until or float("inf")), changes_nothing(method, kw)
            try:
                with answer_deadline(answer_by):  # its head and body too (client37: a head trickled byte by byte)
                    response = self._http.send(self._http.build_request(method, path, **kw,
                                                                        extensions={"trace": unsent}), stream=True)
                    read_whole(response, url=self.api_url, what=f"{method} {path}", reads=reads,
                               limit=self.max_answer_bytes, deadline=answer_by, waited=waited, bound=bound)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                # a try the caller's bound cut that timed out did for want of time: the API's last refusal stands
                exc = earlier if cut and earlier and isinstance(error, httpx.ConnectTimeout) else error
                cause = f"connect timed out after {took:g}s" if isinstance(exc, httpx.ConnectTimeout) \
                    else connect_cause(exc)
                if self._wait_to_retry(attempt, deadline, (self._reached or self._connected) and retry.may_retry(
                        method, headers, sent=False) and (self.watch is None or self.watch.refused(cause)),
                        held=self.watch.left() if self.watch is not None else None):  # after refused(): begun
                    earlier = exc
                    continue
                raise unreachable(self.api_url, exc, took, cut=cut) from exc
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                # a connection made and then lost (reset, closed, no answer): resent where safe, whether or not
                # the API had answered yet (attack33b F5: a keyed batch reset 0.13 s in was not); an answer that
                # is not HTTP from an address that never answered is not a gamead API: not waited for
                if isinstance(exc, httpx.TimeoutException) and time.monotonic() >= answer_by - 0.01:  # not resent
                    raise late(self.api_url, f"{method} {path}", reads, waited, head=response is None,
                               sent_whole=not unsent.failed, bound=bound) from exc
                if not (self._reached or self._own or isinstance(exc, httpx.TimeoutException)) and (
                        spoke := not_http(self.api_url, first_words(self.api_url))) is not None:
                    raise spoke from exc  # a server that speaks first (NATS's INFO): not HTTP (attack47 F3)
                lost = self._reached or lost_kind(exc) is not None
                if self._wait_to_retry(attempt, deadline, lost and retry.may_retry(
                        method, headers, keyed=keyed, sent=not unsent.failed)):
                    self._tries.lost = self._tries.lost or ("" if unsent.failed else lost_kind(exc) or "timeout")
                    continue
                if isinstance(exc, httpx.PoolTimeout):  # no connection came free: nothing was sent
                    raise unreachable(self.api_url, exc, took, cut=cut) from exc
                raise no_answer(self.api_url, exc, took, reads=reads, sent_whole=not unsent.failed) from exc
            except httpx.InvalidURL as exc:  # the API URL was checked above: the request's own path or query
                raise unsendable(method, path, exc) from exc
            except httpx.UnsupportedProtocol as exc:
                raise ApiClientError(
                    f"invalid API URL {self.api_url!r}: {exc} — set --api or GAMEAD_API_URL"
                ) from exc
            except httpx.HTTPError as exc:
                raise ApiClientError(f"request to {self.api_url}{path} failed: {exc}") from exc
            self._reached = True
            status = self._answered(response, sent)
            proxy = from_proxy(response)  # the API gave no answer
            if self.watch is not None and not proxy:  # an answer: ends the API-unreachable outage under way, if any
                self.watch.answered(started)  # not one sent before the outage began (flakes50)
            took_nothing = whole_503_took_nothing and status == 503 and not proxy  # the API's own 503
            busy = status == 409 and in_process(response)  # its key's first request still stored (attack38a F3)
            resend = retry.may_retry(method, headers, status=status, took_nothing=took_nothing, keyed=keyed,
                                     in_process=busy, gateway=proxy)
            if proxy and self.watch is not None and not self.watch.refused(proxy_cause(response), proxy=True,
                                                                           resent=resend):
                break  # a proxy's, as a connection refused: an outage (outage46's leftover); its stop come
            held = self.watch.left() if proxy and self.watch is not None else None  # retried up to its stop
            if took_nothing and self.watch is not None:  # a store refusal begins a store outage now (outage38)
                self.watch.refused_whole(error_from_response(response))
            if (status in retry.RETRY_STATUSES or busy or proxy) and self._again_after(
                    response, attempt, begun, until, resend, held=held):
                continue
            break
        if response.is_redirect or 300 <= response.status_code < 400:  # never followed: the token would go too
            raise redirected(response, self.api_url, f"{method} {path}", reads)
        if response.is_error:
            error = error_from_response(response, self.again) if not proxy else \
                by_proxy(self.api_url, response, reads=reads)
            if response.status_code in (404, 405) and not self._is_gamead_api():
                raise self._no_api_here(
                    f"{method} {response.request.url.path} answered HTTP {response.status_code}") from error
            raise error
        return response

    def cancel_retries(self) -> None:
        """End every wait to send a request again, now and later (from any thread): the requests waiting give
        their last answer at once (a Ctrl-C must not wait out a ``Retry-After``)."""
        self._cancelled.set()

    def abort(self) -> None:
        """End every request in flight now, from any thread: no more waits to retry (:meth:`cancel_retries`) and
        every connection's socket shut down, so a request waiting for its answer gets its error at once (a
        :class:`NoAnswer`) instead of holding the process's exit for ``timeout`` + ``retry_for`` after an
        interrupted command printed its summary (review30b F11). The client is not to be used after it."""
        self.cancel_retries()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _opened(self, sock: object) -> None:
        """A TCP connection to the API was made: something listens at :attr:`api_url` (a refusal from now on is
        the API gone away, not a wrong URL: it may be waited for, attack33b F5)."""
        self._connected = True
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sockets.add(sock)

    def count_retry(self) -> None:
        """Count one request sent again by a caller (``gamead submit`` resending a batch's refused ads)."""
        with self._lock:
            self.retried += 1

    def _answered(self, response: httpx.Response, sent: float) -> int:
        """An answer came (``sent``: this machine's clock when its request went): its ``Date`` noted (the service's
        time), and any but a 429 noted as a request the rate limiter let through (:func:`gamead_cli.pacing.
        retries_end`). Returns its status."""
        service_clock.note(response.headers.get("date"), sent, clock.local())
        if response.status_code != 429:
            self._through = time.monotonic()
        return response.status_code

    def _again_after(self, response: httpx.Response, attempt: int, begun: float, until: float | None,
                     allowed: bool, *, held: float | None = None) -> bool:
        """Wait to send again a request begun at ``begun`` (monotonic) and answered ``response`` (a 429, a 503, a
        409 in process; read whole) and answer True, or answer False: not ``allowed``, or its retries' end come
        (:mod:`gamead_cli.pacing`: a 429's is ``client.retry_for`` after this client's last request let through)."""
        status = response.status_code
        wait = pacing.answer_wait(status, response.headers.get("Retry-After"), service_clock.now())
        since = max(begun, self._through) if status == 429 else None  # refused by the rate limiter since then
        return self._wait_to_retry(attempt, pacing.retries_end(status, begun, self._through, self.retry_for, until),
                                   allowed, wait, held=held, limited=since)

    def _wait_to_retry(self, attempt: int, deadline: float, allowed: bool, retry_after: float | None = None, *,
                       held: float | None = None, limited: float | None = None) -> bool:
        """Sleep before sending again and answer True, or answer False (not allowed, or no budget left and no
        outage's stop in ``held`` s: :func:`gamead_cli.retry.outage_wait`). ``limited``: refused 429 since then
        (monotonic), said once a command when long (:func:`gamead_cli.pacing.say_limited`)."""
        if not allowed or self._cancelled.is_set():
            return False
        wait = retry.outage_wait(attempt, retry_after, deadline - time.monotonic(), held)
        if wait is not None and limited is not None:
            self._say_limited(limited, wait, deadline)
        if wait is None or self._cancelled.wait(wait):
            return False
        self.count_retry()
        return True

    def _say_limited(self, since: float, wait: float, deadline: float) -> None:
        """Say on stderr that the API rate-limits this command, until when it tries, once (probe47 F3): above a
        progress bar (rich's, which holds ``sys.stderr``); never on stdout, never an error if stderr cannot take it."""
        now = time.monotonic()
        with self._lock:
            if not pacing.say_limited(since, now, wait, self._limited_said):
                return
            self._limited_said = True
        with contextlib.suppress(OSError, ValueError):  # ValueError: a closed file
            note_line(pacing.limited_text(service_clock.now() + deadline - now))

    def _is_gamead_api(self) -> bool:
        """True if ``GET /healthz`` at the base URL answers like a gamead API (checked once per client)."""
        if self._verified is None:
            self._verified = answers_like_gamead(self._http, self.api_url, self.max_answer_bytes, self.timeout)
        return self._verified

    def _no_api_here(self, answered: str) -> ApiUnreachable:
        """What a client says when the base URL is no gamead API (``answered``: what the request got, and
        ``GET /healthz`` did not answer like gamead): exit 3, naming ``--api``."""
        return ApiUnreachable(f"no gamead API at {self.api_url}: {answered} and GET {self.api_url}/healthz did not "
                              "answer like gamead — --api (GAMEAD_API_URL) must be the API's base URL, e.g. "
                              "http://127.0.0.1:8080")

    def service_now(self) -> datetime:
        """The service's time now (aware UTC), to resolve an age like ``--since 1h`` on (attack33a F10): known
        from the ``Date`` of an earlier answer (:mod:`gamead_cli.service_clock`), else of a ``GET /healthz`` sent
        first (a 503 while NATS is away carries one too). Raises :class:`ApiUnreachable` when the API cannot be
        reached; an API that sends no ``Date`` leaves this machine's clock."""
        def ask() -> None:
            try:
                self.send("GET", "/healthz")
            except ApiUnreachable:
                raise
            except (ApiClientError, NotFound):  # answered (its Date noted) but not 200: the time is known
                pass

        return service_clock.service_time(ask)

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """Send one request and return its decoded JSON body (``None`` for an empty body), checked against what the
        route answers (:func:`gamead_cli.answer_shapes.check`: one that does not fit is exit 3, attack36 F4; a
        write's, or a write's body that is not JSON, :class:`NoAnswer`: it may have been carried out, client37)."""
        response = self.send(method, path, **kw)
        reads, sent = changes_nothing(method, kw), kw.get("json")
        try:
            body = decode_json(response.content, url=self.api_url, what=f"{method} {path}") if response.content \
                else None
        except (ValueError, ApiUnreachable) as exc:  # a write's: it may have been carried out (client37)
            if not reads:
                raise answer_shapes.not_a(self.api_url, method, path, "a gamead answer", "not JSON" if isinstance(
                    exc, ValueError) else "JSON nested too deeply", reads=False) from None
            if isinstance(exc, ApiUnreachable):
                raise
            if not self._is_gamead_api():  # say a worker's metrics port: not an API at all (exit 3, not 1)
                raise self._no_api_here(
                    f"{method} {path} answered a non-JSON body (HTTP {response.status_code})") from exc
            raise ApiClientError(
                f"API answered {method} {path} with a non-JSON body (HTTP {response.status_code})",
                status=response.status_code,
            ) from exc
        return answer_shapes.check(self.api_url, method, path, body, reads=reads,
                                   dry=isinstance(sent, dict) and sent.get("dryRun") is True)
