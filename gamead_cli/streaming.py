"""The job-following stream of :class:`gamead_cli.client.ApiClient` (``stream_ndjson``: ``dlq jobs --follow``, a
replay or purge followed, ``dlq import``'s jobs, the dashboard's jobs): one request asking for newline-delimited
JSON, its lines yielded as they come, the answer's head bounded as every answer's, its lines for as long as the
job runs, each silence between two of its reads at most the same bound, or :data:`LEAST_SILENCE` if longer (the
job's stream sends its document at least every :data:`~gamead_core.jobs.runner.STREAM_KEEPALIVE` s; attack56 F2: a
frozen API or a link dropping packets held a followed ``dlq replay`` silent for ever)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx

from gamead_cli import retry
from gamead_cli.answers import ANSWER_TIMEOUTS, late, read_whole, redirected, stream_pieces
from gamead_cli.api_errors import HINT, error_from_response, from_proxy, lost_kind, say_source, unreachable
from gamead_cli.deadline_http import answer_deadline
from gamead_cli.ndjson_lines import MAX_STREAM_LINE_BYTES, ndjson_lines
from gamead_cli.unsent import Unsent
from gamead_core import clock
from gamead_core.errors import ApiUnreachable

#: the least silence (s) a job's stream begun is given before it is cut: 3 of the API's keep-alives
#: (:data:`gamead_core.jobs.runner.STREAM_KEEPALIVE`, 5 s; not imported: it loads nats-py). Without it a short
#: ``client.timeout`` cut a live API's stream: at 1 s a 3 s bound, while its NATS was away (keep-alives 5 s apart)
#: the stream was cut and not followed again until NATS came back (reread56)
LEAST_SILENCE = 15.0


class StreamCalls:
    """Mixin of :class:`gamead_cli.client.ApiClient`: needs its connection (``_http``), what it knows of the API
    (``_reached``, ``_connected``, ``_opened``, ``_is_gamead_api``, ``_answered``) and its retry rules
    (``_wait_to_retry``, ``_again_after``)."""

    api_url: str
    timeout: float
    retry_for: float
    max_answer_bytes: int
    again: str  #: the flags that reach the same API, for a command an error names
    _http: httpx.Client
    _reached: bool
    _connected: bool
    _opened: Any
    _wait_to_retry: Any
    _answered: Any
    _again_after: Any
    _is_gamead_api: Any

    def stream_ndjson(self, method: str, path: str, **kw: Any) -> Iterator[dict[str, Any]]:
        """Send one request asking for newline-delimited JSON and yield each line as it arrives.

        Opening the stream follows :meth:`send`'s rule for a connection error (a ``GET`` is safe to send again):
        a connection refused once the API had answered or been connected to, or one reset or closed before the
        answer began, is tried again within ``retry_for`` (attack33b F5: this path bypassed it), and so is an answer
        429 or 503 (or a proxy's 502, 504) before any line, as :meth:`send` would (:mod:`gamead_cli.pacing`;
        attack46 F7: a 429 ended ``dlq import`` and a followed replay at once, the job going on unwatched); once
        the answer began, a lost stream raises :class:`ApiUnreachable` (the caller decides whether to follow
        again). A line longer than :data:`gamead_cli.ndjson_lines.MAX_STREAM_LINE_BYTES` (never held whole) or not
        strict JSON (say ``--api`` points at something else) raises :class:`ApiClientError`."""
        say_source()  # as send's
        headers = {**kw.pop("headers", {}), "Accept": "application/x-ndjson"}
        started = time.monotonic()
        deadline, attempt, begun = started + self.retry_for, 0, False
        while True:
            attempt += 1
            unsent, sent, waited = Unsent(self._opened), clock.local(), ANSWER_TIMEOUTS * self.timeout
            silence = max(waited, LEAST_SILENCE)  # between two reads of the stream's lines
            head_by = time.monotonic() + waited  # the answer's head, and an error's body (client37); the lines: not
            try:
                with answer_deadline(head_by):
                    request = self._http.build_request(method, path, headers=headers, **kw,
                                                       timeout=httpx.Timeout(None, read=silence),
                                                       extensions={"trace": unsent})
                    response = self._http.send(request, stream=True)
                with contextlib.closing(response):
                    begun = self._reached = True
                    status = self._answered(response, sent)
                    if response.is_redirect or 300 <= response.status_code < 400:
                        raise redirected(response, self.api_url, f"{method} {path}", True)
                    if response.is_error:  # read as any answer is: bounded (attack36 F3)
                        with answer_deadline(time.monotonic() + waited):
                            read_whole(response, url=self.api_url, what=f"{method} {path}", reads=True,
                                       limit=self.max_answer_bytes, deadline=time.monotonic() + waited, waited=waited)
                        proxy = from_proxy(response)  # a proxy's 5xx
                        if (status in retry.RETRY_STATUSES or proxy) and self._again_after(
                                response, attempt, started, None, retry.may_retry(method, headers, status=status,
                                                                                  gateway=proxy)):  # before any line
                            begun = False
                            continue
                        error = error_from_response(response, self.again)
                        if response.status_code in (404, 405) and not self._is_gamead_api():
                            raise ApiUnreachable(f"no gamead API at {self.api_url} ({method} {path} answered HTTP "
                                                 f"{response.status_code}) — check --api / GAMEAD_API_URL") from error
                        raise error
                    yield from ndjson_lines(stream_pieces(response, url=self.api_url, what=f"{method} {path}",
                                                          most=MAX_STREAM_LINE_BYTES), f"{method} {path}")
                return
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                connect = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                if not begun and isinstance(exc, httpx.TimeoutException) and time.monotonic() >= head_by:
                    raise late(self.api_url, f"{method} {path}", True, waited, head=True, sent_whole=True) from exc
                if not begun and self._wait_to_retry(attempt, deadline, retry.may_retry(
                        method, headers, sent=not connect) and (self._reached or self._connected if connect
                                                               else self._reached or lost_kind(exc) is not None)):
                    continue
                if begun and isinstance(exc, httpx.ReadTimeout):  # no byte for `silence` s: a frozen API or link
                    raise ApiUnreachable(f"the gamead API at {self.api_url} sent nothing on the stream of {method} "
                                         f"{path} for {silence:g}s ({ANSWER_TIMEOUTS} × client.timeout, "
                                         f"{LEAST_SILENCE:g}s at least; a running job's stream sends a line every "
                                         f"few seconds): cut — {HINT}") from exc
                if isinstance(exc, httpx.RemoteProtocolError):
                    raise ApiUnreachable(f"the gamead API at {self.api_url} closed the stream: {exc} — "
                                         f"{HINT}") from exc
                raise unreachable(self.api_url, exc, self.timeout) from exc
