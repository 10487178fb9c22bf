"""The circuit breaker of an API node's Redis link: a pure state machine (no I/O; ``clock`` is injectable).

Only the link's health check (:meth:`gamead_core.redis_link.RedisLink.check`, the calls traffic makes, about once a
second) may close the breaker; traffic may only open it (attack28a F1: a full Valkey, or a read-only replica, answers
``PING`` and ``GET`` while it refuses every write, so a breaker closed by any lucky read flapped and logged a
"redis is back"/"redis failing" pair every few seconds)::

    closed ──N consecutive failures, or one refusal──▶ open ──reset seconds──▶ half-open (the check runs)
      ▲                                                  ▲                          │
      └──────────────────── the check succeeded ─────────┼──────────────────────────┘
                                                          └──── the check failed ───┘

* closed: calls pass; ``failures`` consecutive failures (timeouts, connection errors) open it, and so does a
  single *refusal*: Redis answered and said no (out of memory, read-only replica, no permission, …), which
  is not a passing glitch. A traffic call that succeeds resets the count; the health check passing does not
  (review28 R2: the traffic's own failures open it, however often the check passes between them).
* open: calls are refused (no timeouts to wait out); after ``reset`` seconds the health check is due
  (:meth:`CircuitBreaker.check_due`) and runs as the half-open probe. Nothing else is let through.
* half-open: the check's success closes it, its failure opens it again for ``reset`` seconds.

One log line when it opens (WARNING, with the reason) and one when it closes (INFO): never a pair per probe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

log = logging.getLogger("gamead_core.redis_link")

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """See the module doc. ``failures``: consecutive failures that open it; ``reset``: seconds it stays open
    before the health check may close it; ``clock``: seconds, monotonic."""

    def __init__(self, failures: int, reset: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures
        self.reset = reset
        self._clock = clock
        self.state: BreakerState = "closed"
        self.reason: str | None = None
        self.consecutive = 0
        self._opened_at = 0.0
        # counters, for /v1/stats
        self.failures = 0
        self.successes = 0
        self.opened = 0
        self.short_circuited = 0

    def allow(self) -> bool:
        """May a traffic call go to Redis now? Only while closed (the health check alone probes an open one)."""
        if self.state == "closed":
            return True
        self.short_circuited += 1
        return False

    def check_due(self) -> bool:
        """May the health check run now? Always while closed; while open once ``reset`` seconds have passed
        since it opened (then the breaker is half-open until the check reports)."""
        if self.state == "open":
            if self._clock() - self._opened_at < self.reset:
                return False
            self.state = "half_open"
        return True

    def record_success(self, *, check: bool = False) -> None:
        """A call succeeded. Only the health check (``check``) closes an open or half-open breaker: a traffic
        call that ends after it opened (a read Redis still answers) changes nothing. Only a traffic call resets
        the count of consecutive failures while closed (review28 R2): a check passing every second while every
        heavier traffic call times out would otherwise keep the count below ``failures`` for ever."""
        self.successes += 1
        if self.state == "closed":
            if not check:  # review28 R2: a light check passing says nothing of the traffic calls failing
                self.consecutive = 0
            return
        if not check:
            return
        self.consecutive = 0
        log.info("redis is back (a write was stored); circuit breaker closed")
        self.state = "closed"
        self.reason = None

    def record_failure(self, reason: str, *, refusal: bool = False, said: str | None = None) -> None:
        """A call failed: ``reason`` is what ``/readyz`` says (no server named); ``refusal``: Redis answered no
        (opens at once); ``said``: the log line's wording when it differs (it may name the host)."""
        self.failures += 1
        self.consecutive += 1
        if self.state == "open":  # a call started before it opened: the reason of the outage stays
            return
        self.reason = reason
        if self.state == "half_open" or refusal or self.consecutive >= self.threshold:
            if self.state == "closed":
                self.opened += 1
                log.warning("redis failing (%s); circuit breaker open: cache bypassed, local rate limits",
                            said or reason)
            self._open()

    def trip(self, reason: str) -> None:
        """Open it now, whatever the count (the start-up check failed: the node is degraded from its first
        ``/readyz``); the caller logs why."""
        self.reason = reason
        if self.state == "closed":
            self.opened += 1
        self._open()

    def _open(self) -> None:
        self.state = "open"
        self._opened_at = self._clock()

    def snapshot(self) -> dict[str, object]:
        return {
            "state": self.state,
            "reason": self.reason,
            "consecutiveFailures": self.consecutive,
            "failures": self.failures,
            "successes": self.successes,
            "opened": self.opened,
            "shortCircuited": self.short_circuited,
        }


__all__ = ["BreakerState", "CircuitBreaker"]
