"""The API's connection-bound series (review29 F9): the ``503 too_many_connections`` answers, the connections
closed for room and the failed accept() calls went only to a throttled WARNING line; no HTTP route counts them
(the protocol answers, not the application), so an alert on 5xx rates saw nothing. Registered in
:data:`gamead_core.telemetry.metrics.API_REGISTRY` by that module (served on the API's ``GET /metrics``; this one
imports nothing of gamead's, as the protocol that records them is imported by it); recorded only while
``metrics.enabled`` (:func:`gamead_core.telemetry.metrics.set_recording` sets :data:`recording`).

A worker's ``/metrics`` listener (:mod:`gamead_core.telemetry.metrics_listener`) keeps a bound of its own and
counts under the same names, in series of its own (:func:`scrape_counters`, made there with its bound,
registered in :data:`gamead_core.telemetry.metrics.WORKER_REGISTRY` by :func:`register` as the API's are):
before, it closed connections for room and no series said so.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.registry import Collector

#: ``metrics.enabled`` of this process (set with :func:`gamead_core.telemetry.metrics.set_recording`)
recording = True

CONNECTIONS_REFUSED: Final = Counter(
    "gamead_connections_refused", "New connections answered 503 too_many_connections (api.max_connections reached, "
    "every open connection serving a request).", registry=None,
)
CONNECTIONS_CLOSED_FOR_ROOM: Final = Counter(
    "gamead_connections_closed_for_room", "Connections waiting for a request closed to make room for a new one "
    "(api.max_connections reached, or accept() out of descriptors).", registry=None,
)


def scrape_counters(*, kept: int, open_at_most: int) -> tuple[Counter, Counter]:
    """The same two counts, of a worker's ``/metrics`` listener, whose bound is its own (past ``kept`` open
    connections, waiting ones are closed for room; past ``open_at_most``, a newcomer is closed at once:
    :data:`gamead_core.telemetry.metrics_listener.MAX_CONNECTIONS` and ``HARD_CONNECTIONS``, passed in by that module
    so the help cannot drift from them): ``(refused, closed for room)``, registered nowhere yet (:func:`register`)."""
    scrapes = "connections to this worker's /metrics"
    return (Counter("gamead_connections_refused", f"New {scrapes} closed at once ({open_at_most} open, every other "
                    "one being answered or holding a request not read yet).", registry=None),
            Counter("gamead_connections_closed_for_room", f"Waiting {scrapes} closed to make room for a new one "
                    f"({kept} open).", registry=None))


ACCEPT_FAILURES: Final = Counter(
    "gamead_accept_failures", "accept() calls that failed, by reason: the errno's name (EMFILE, ENFILE, ENOBUFS, "
    "ENOMEM, or a network error of the new socket Linux says to retry), else 'other'.",
    ["reason"], registry=None,
)
HTTP_REQUESTS: Final = Counter(
    "gamead_http_requests", "HTTP requests the API answered, by route template, method and status.",
    ["route", "method", "status"], registry=None,
)
#: the ``route`` of a request no route matched (``gamead_core.telemetry.http``) or none read (:func:`refused_unread`)
UNMATCHED: Final = "unmatched"
CONNECTIONS_OPEN: Final = Gauge(
    "gamead_connections_open", "HTTP connections the API holds open (a descriptor each, until closed).",
    registry=None,
)

#: accept() errors that mean "no descriptor or memory for it now", not a broken listener
OUT_OF: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: accept() errors that are the new connection's own network errors: Linux's accept(2) (NOTES, "Error handling")
#: says to retry at once, as for EAGAIN
RETRY_AT_ONCE: Final = frozenset({errno.EPROTO, errno.ENETDOWN, errno.ENOPROTOOPT, errno.EHOSTDOWN, errno.ENONET,
                                  errno.EHOSTUNREACH, errno.EOPNOTSUPP, errno.ENETUNREACH, errno.EPERM,
                                  errno.ECONNABORTED})
#: the label values of :data:`ACCEPT_FAILURES` besides 'other' (bounded: a fixed set of errno names)
_REASONS: Final = OUT_OF | RETRY_AT_ONCE


def accept_reason(code: int | None) -> str:
    """The ``reason`` label of an accept() failure with errno ``code``: its name if in :data:`_REASONS`, else
    'other' (so the label's values stay bounded)."""
    return errno.errorcode[code] if code in _REASONS and code is not None else "other"


def count(counter: Counter) -> None:
    """Add 1 to ``counter`` (a label-less one of this module) if recording."""
    if recording:
        counter.inc()


def accept_failed(code: int | None) -> None:
    """Count one accept() failure with errno ``code`` (:func:`accept_reason`)."""
    if recording:
        ACCEPT_FAILURES.labels(accept_reason(code)).inc()


def opened(delta: int) -> None:
    """A connection was made (``delta`` 1) or lost (-1)."""
    CONNECTIONS_OPEN.inc(delta)


def refused_unread(status: int) -> None:
    """Count a request the protocol refused before any application saw it (``400`` not HTTP, ``431``, ``408`` for a
    head that never arrived whole) in ``gamead_http_requests_total`` as ``route="unmatched", method="other"``: its
    method and target may be anything a client sent, never a label (attack31b F1: 25,000 refusals moved no series)."""
    if recording:
        HTTP_REQUESTS.labels(UNMATCHED, "other", str(status)).inc()


#: the API's series of this module
API_SERIES: Final = (CONNECTIONS_REFUSED, CONNECTIONS_CLOSED_FOR_ROOM, ACCEPT_FAILURES, CONNECTIONS_OPEN, HTTP_REQUESTS)


def register(registry: CollectorRegistry, collectors: Iterable[Collector] = API_SERIES) -> None:
    """Register ``collectors`` in ``registry``: the API's series (:data:`API_SERIES`) in the API's, a worker's
    listener's (:func:`scrape_counters`) in the worker's."""
    for collector in collectors:
        registry.register(collector)
