"""Reads many viewers repeat, done once (:class:`SharedReads`), and who is watching rather than acting
(:func:`watching`, :func:`max_age_of`).

attack37 F1: 24 ``gamead top --readonly`` on one API node each read the DLQ's newest page with a consumer of its own
on nats-server, at every refresh, in the same ``dlq.scans`` slots as an operator's count: the operator's dry run
was refused 503 ``list_busy`` after 8.8 s, and ``gamead dlq list`` took 18 s to show 2 of 3 rows. Now

* identical concurrent reads share one read (single-flight, keyed by the normalised query and by who reads:
  watchers never join an operator's read, nor operators a watcher's, so neither's refusal is the other's);
* a watcher's read may be answered from a cache of the last ``max_age`` seconds (``Cache-Control: max-age=N``
  from the client, at most the server's bound), with its age said in the answer;
* watchers' reads run in capacity of their own (the route's gate), so an operator's is never refused for them.

Memory is bounded: the cache holds at most ``max_bytes`` of answers (an answer larger than that is not cached), and
each read in flight is one answer, however many requests wait for it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from cachetools import TTLCache
from prometheus_client import Counter
from starlette.requests import Request

from gamead_core.api.auth import auth_required
from gamead_core.api.responses import JsonResponse
from gamead_core.single_flight import SingleFlight
from gamead_core.telemetry.metrics import API_REGISTRY

#: answers of shared reads, by read (``dlq``: GET /v1/dlq, ``audit``: GET /v1/audit) and how each was answered:
#: ``read`` (a read of its own: a scan), ``joined`` (an identical read in flight), ``cached`` (a recent answer)
SHARED_READS = Counter("gamead_shared_reads", "Answers of GET /v1/dlq and GET /v1/audit by how they were made: read "
                       "(a read of their own), joined (an identical read in flight) or cached (a watcher's, from a "
                       "recent answer).", ["read", "answer"], registry=API_REGISTRY)
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,9})\"?\s*(?:,|$)", re.IGNORECASE)


def max_age_of(cache_control: str | None) -> int:
    """The ``max-age`` (seconds, RFC 9111 5.2.1.1) of a request's ``Cache-Control``: how old an answer the client
    accepts; 0 when absent or malformed (a fresh read)."""
    if not cache_control or len(cache_control) > 256:
        return 0
    found = _MAX_AGE.search(cache_control)
    return int(found.group(1)) if found else 0


def watching(request: Request) -> bool:
    """True for a read by someone watching rather than acting: a client that accepts a cached answer
    (``Cache-Control: max-age`` > 0, as ``gamead top`` sends), or a token that may not act (a viewer's, when
    tokens are required). An operator's ``gamead dlq list`` and every dry run are not."""
    if max_age_of(request.headers.get("cache-control")) > 0:
        return True
    principal = getattr(request.state, "principal", None)
    if principal is None or not auth_required(request.app.state.settings):
        return False
    return not principal.may("POST", "v1")


class SharedReads:
    """Single-flight reads with a short-lived, byte-bounded cache of their answers (serialized JSON).

    ``name``: the read, as the metric ``gamead_shared_reads_total{read}`` names it; ``max_age``: the oldest cached
    answer ever given (seconds; 0: no cache, identical concurrent reads are still shared); ``max_bytes``: the
    cache's bound (sum of the answers' lengths). Counters: ``reads`` run, ``joined`` (answered by a read another
    request started), ``cached`` (answered from the cache)."""

    def __init__(self, name: str, max_age: float, max_bytes: int = 8 * 1024**2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.max_age = name, max_age
        self._clock = clock
        self._cache: TTLCache[Hashable, tuple[float, bytes]] = TTLCache(
            maxsize=max_bytes, ttl=max(max_age, 0.001), timer=clock, getsizeof=lambda v: len(v[1]))
        self._flights: SingleFlight[Hashable, tuple[float, bytes]] = SingleFlight()
        self.reads = self.joined = self.cached = 0

    async def read(self, key: Hashable, run: Callable[[], Awaitable[bytes]], *,
                   accept_age: float = 0.0) -> tuple[bytes, float]:
        """``(answer, age)``: the answer of ``run()`` for ``key``, from the cache if one at most ``accept_age``
        (and ``max_age``) seconds old is there, else from a read in flight for the same key, else from a new one;
        ``age``: seconds since that answer was read (0.0 for a read this request started or joined). ``run``'s
        error is every waiting request's (a refusal, e.g. 503 ``list_busy``, is not cached)."""
        limit = min(accept_age, self.max_age)
        if limit > 0 and (hit := self._cache.get(key)) is not None and (age := self._clock() - hit[0]) <= limit:
            self.cached += 1
            SHARED_READS.labels(self.name, "cached").inc()
            return hit[1], age  # the age checked: a second look at the clock could say more than the limit
        if key in self._flights:
            self.joined += 1
            SHARED_READS.labels(self.name, "joined").inc()
        else:
            self.reads += 1
            SHARED_READS.labels(self.name, "read").inc()
        _, body = await self._flights.run(key, lambda: self._run(key, run))  # one requester leaving stops no read
        return body, 0.0

    async def _run(self, key: Hashable, run: Callable[[], Awaitable[bytes]]) -> tuple[float, bytes]:
        body = await run()
        done = (self._clock(), body)
        if self.max_age > 0 and len(body) <= self._cache.maxsize:
            self._cache[key] = done
        return done

    def snapshot(self) -> dict[str, Any]:
        """The counters (``/v1/stats`` style): ``{reads, joined, cached, inFlight, cachedBytes, maxAgeSeconds}``."""
        return {"reads": self.reads, "joined": self.joined, "cached": self.cached, "inFlight": len(self._flights),
                "cachedBytes": self._cache.currsize, "maxAgeSeconds": self.max_age}


def shared_answer(body: bytes, age: float) -> JsonResponse:
    """A shared read's answer (``body``: a JSON object) with its age: ``ageSeconds`` (3 decimals, first in the
    object) and ``Age`` (whole seconds, RFC 9111 5.1) when it came from the cache; ``Cache-Control: no-store``."""
    stamped = b'{"ageSeconds":%.3f,' % age + body[1:] if body[1:2] != b"}" else b'{"ageSeconds":%.3f}' % age
    headers = {"Cache-Control": "no-store"}  # live data: no proxy or client keeps it
    if age > 0:
        headers["Age"] = str(int(age))
    return JsonResponse(stamped, 200, headers)
