"""When a request the API answered 429, 503 or 409 ``idempotency_key_in_process`` is sent again, and until when
(pure; :meth:`gamead_cli.client.ApiClient.send` and the job stream of :mod:`gamead_cli.streaming`, whose
requests :func:`gamead_cli.retry.may_retry` lets be sent again).

A **429** is the API's rate limiter refusing the request before any route ran: nothing was done, and the answer
says when a token is back. It is sent again while the API keeps answering and lets this client's requests through
(attack46 F7: two ``gamead dlq import`` of one client address share its ``/v1/*`` bucket; the follow stream of a
job took a 429 as the end, no try again, and each import ended exit 1 on the other's use of the tokens):

* its retries end :data:`LIMITED_FOR` × ``client.retry_for`` (60 s by default) after the later of the request's
  start and this client's last request the limiter let through (any answer but a 429, on any thread:
  :func:`retries_end`) — as attack46 F2 resends a submit's ads refused ``rate_limited`` within ``retry_for`` of the
  run's last ad taken (:func:`gamead_cli.submit.resending.own_end`), with room for a client that sends one request
  at a time: the one refused waits ``Retry-After`` (1 s) while the other takes the tokens back, so one of two
  imports gave up a dry run's request, every try of a 2 s ``retry_for`` (one retry) refused, in 1 run of 4. A
  command whose requests keep passing keeps going; one the API refuses throughout still ends; ``retry_for`` 0 never
  sends one again;
* each try waits the ``Retry-After`` the API gave, plus up to :data:`JITTER` of it, so two clients refused
  together do not come back together (:func:`answer_wait`).

A 503 or a 409 keeps its bound (``client.retry_for`` of the request's start) and waits ``Retry-After`` as read.

A command the API refuses 429 for more than :data:`SAY_AFTER` seconds says so once, on stderr, before the wait that
takes it past them (:func:`say_limited`, :func:`limited_text`): probe47 F3, ``gamead ads list`` against a 429
throughout waited 61 s and 48 requests with nothing on stderr until its final error."""

from __future__ import annotations

import random
from collections.abc import Callable

from gamead_cli import retry
from gamead_cli.formats import clock_text

#: the share of a 429's wait added at random: clients refused together come back apart
JITTER = 0.2
#: a 429's retries last this many times ``client.retry_for`` (after the client's last request let through)
LIMITED_FOR = 6
#: seconds a request may be refused 429 (since the later of its start and the client's last request let through)
#: before the command says it is rate limited: once a command
SAY_AFTER = 5.0


def answer_wait(status: int, header: str | None, now: float, *,
                uniform: Callable[[float, float], float] = random.uniform) -> float | None:
    """Seconds to wait before sending again a request answered ``status`` with ``Retry-After`` ``header`` (``now``:
    epoch seconds, for an HTTP-date): the header as read, and for a 429 up to :data:`JITTER` of it more; None when
    it says none, or 0 for a 429 (the caller's back-off then)."""
    wait = retry.retry_after_seconds(header, now)
    if status == 429 and wait == 0:  # says nothing (gamead's limiter says >= 1 s): sent at once, a 429 storm
        return None  # spun ~22 requests a second for 6 x retry_for (probe47 F2); the back-off then
    return wait + uniform(0.0, JITTER * wait) if status == 429 and wait is not None else wait


def retries_end(status: int, started: float, through: float, retry_for: float, until: float | None = None) -> float:
    """When the retries of a request begun at ``started`` and answered ``status`` end (monotonic seconds): for a
    429, :data:`LIMITED_FOR` × ``retry_for`` after the later of ``started`` and ``through`` (the client's last
    request the limiter let through); else ``retry_for`` after ``started``. Never past ``until`` less
    :data:`gamead_cli.retry.LEAST_TRY` (a caller's bound on the whole request)."""
    end = max(started, through) + LIMITED_FOR * retry_for if status == 429 else started + retry_for
    return end if until is None else min(end, until - retry.LEAST_TRY)


def say_limited(since: float, now: float, wait: float, said: bool) -> bool:
    """Whether to say, as a wait of ``wait`` s to send again a request refused 429 begins (``now``, monotonic),
    that the API rate-limits the command: not ``said`` yet, and by the wait's end the request will have been refused
    since ``since`` (the later of its start and the client's last request let through: :func:`retries_end`'s)
    for :data:`SAY_AFTER` s or more. A long ``Retry-After`` is said as its wait begins, not after it. Pure."""
    return not said and now + wait - since >= SAY_AFTER


def limited_text(until: float) -> str:
    """The line that says so: its retries end at ``until`` (epoch seconds, the service's clock). Pure."""
    return f"rate limited by the API (HTTP 429); trying again until {clock_text(until)}"
