"""Direct gets that do not wait on a replica (or a server) that stopped answering.

Any replica of a stream may answer a direct get (``$JS.API.DIRECT.GET``: the replicas' queue group). A server
stopped without closing its connections (SIGSTOP, a GC or VM stall, hung) stays in that group until the other
servers find its routes stale (``cluster { ping_interval, ping_max }``: 2 min × 2 by default), and the direct
gets it is given go unanswered: from a healthy server 1 to 4 in 8 timed out (attack25c), and every look at the
queue heads and every record read waited a whole request timeout, so a fleet of workers ran at ~1 %. So a
direct get waits :data:`DIRECT_HEDGE` seconds at most; its caller then asks the stream leader
(``STREAM.MSG.GET``), which a stopped server is no longer once its leaderships moved (seconds).

Each such second ask is counted (``gamead_direct_get_fallbacks_total{reason}``: :func:`fell_back`), and logged
at most once a minute with the stream: on a busy cluster it doubles the leader's reads.
"""

from __future__ import annotations

import logging
import time
import weakref

import nats.errors
from nats.js import JetStreamContext

from gamead_core.telemetry import metrics

log = logging.getLogger(__name__)

#: seconds a direct get waits before its caller asks the stream leader (an answering replica takes ~1 ms)
DIRECT_HEDGE = 0.5
LOG_EVERY = 60.0  #: seconds between two log lines of :func:`fell_back`
_logged = {"at": float("-inf"), "since": 0}  #: when :func:`fell_back` last logged; fallbacks not logged since

_hedged: weakref.WeakKeyDictionary[JetStreamContext, JetStreamContext] = weakref.WeakKeyDictionary()


def hedged(js: JetStreamContext) -> JetStreamContext:
    """``js``'s connection and API prefix with requests that time out after ``min(DIRECT_HEDGE, js's timeout)``
    seconds (nats-py's ``nats.errors.TimeoutError``), for direct gets; one per ``js``, kept while ``js`` lives."""
    short = _hedged.get(js)
    if short is None:
        timeout = min(DIRECT_HEDGE, float(getattr(js, "_timeout", DIRECT_HEDGE) or DIRECT_HEDGE))
        short = _hedged[js] = JetStreamContext(js._nc, prefix=js._prefix, timeout=timeout)
    return short


def cause(reason: str, clustered: bool | None) -> str:
    """What a fallback of ``reason`` (``timeout``, ``no_responders``: :func:`fell_back`) says of its cause, from
    what is known of the server: ``clustered`` is whether the connected nats-server is in a cluster (its INFO's
    ``cluster``; None: not known). One server has no replicas: a timeout there is the server itself."""
    if reason == "no_responders":
        return "the stream has no direct gets"
    if clustered is False:
        return "the nats-server itself is slow (busy, or its disk)"
    if clustered:
        return "a replica's server is slow or stopped"
    return "the nats-server is slow, or a replica's server is slow or stopped"


def clustered_of(nc: object) -> bool | None:
    """Whether ``nc`` (a nats-py connection) reached a nats-server in a cluster, from the INFO it last sent
    (``cluster`` names the cluster); None when no INFO was read yet."""
    info = getattr(nc, "_server_info", None)
    if not isinstance(info, dict) or not info:
        return None
    return bool(info.get("cluster"))


def fell_back(stream: str, exc: Exception, now: float | None = None, *, clustered: bool | None = None) -> None:
    """A direct get of ``stream`` raised ``exc`` (nats-py's ``TimeoutError``: no answer within
    :data:`DIRECT_HEDGE`; ``NoRespondersError``: the stream has no direct gets) and its caller asks the stream
    leader: counted in ``gamead_direct_get_fallbacks_total{reason}`` (when ``metrics.enabled``), logged at most
    once per :data:`LOG_EVERY` seconds (``now``: ``time.monotonic()`` seconds) with the count since and the
    cause :func:`cause` names for ``clustered`` (:func:`clustered_of` the connection; None: not known)."""
    reason = "no_responders" if isinstance(exc, nats.errors.NoRespondersError) else "timeout"
    if metrics.recording():
        metrics.DIRECT_GET_FALLBACKS.labels(reason).inc()
    now = time.monotonic() if now is None else now
    _logged["since"] += 1
    if now - _logged["at"] >= LOG_EVERY:
        log.warning("a direct get of stream %s was asked of its leader (%s; %d such since the last line, logged at "
                    "most once a minute): %s", stream, reason, _logged["since"], cause(reason, clustered),
                    extra={"stream": stream})
        _logged["at"], _logged["since"] = now, 0
