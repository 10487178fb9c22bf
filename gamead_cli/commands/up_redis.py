"""What ``gamead up``'s console says of a Redis (``redis.url``) its API cannot use (attack41a F4).

Redis never makes a node unready (``/readyz`` 200, ``checks.redis`` ``degraded: …``): without it the API counts rate
limits on its own and reads records without the cache, and the ads flow. Before, ``gamead up`` said nothing of it,
at its start (nothing listening on ``redis.url``) or later (Valkey killed, ``maxmemory`` with ``noeviction``):
only ``/readyz``, ``gamead doctor`` (``redis_unwritable``) and one line of api.log did. :class:`RedisNote` turns the
readiness watch's readings into one ``!`` line once Redis has been unusable for more than ``registry.ttl`` in a row
(one reading that is not ``ok`` is often a single timed-out call) and one ``✓`` line when it is usable again. Pure
(clocked by the caller).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gamead_core.scaling.nats_watch import Note
from gamead_core.scaling.ready_watch import Reading


class RedisNote:
    """The console notes of the API's ``checks.redis``, one reading at a time (:meth:`observe`). ``ttl``:
    ``registry.ttl`` (s), how long it must stay unusable before it is said."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._since: float | None = None  #: monotonic: the first reading of the present spell of a Redis not ok
        self._said = False  #: the present spell was said

    def observe(self, reading: Reading) -> Note | None:
        """The note for one reading (its ``redis``: ``ok``, ``disabled``, ``degraded: …``; None, or no answer: not
        counted), or None."""
        state = reading.redis if reading.ready is not None else None
        if state is None or state == "disabled":
            return None
        now = self.clock()
        if state == "ok":
            since, said = self._since, self._said
            self._since, self._said = None, False
            if not said or since is None:
                return None
            return Note(True, f"the API uses Redis (redis.url) again after {now - since:.1f}s: rate limits are "
                              "shared and the record cache is used again")
        if self._since is None:
            self._since = now
        if self._said or now - self._since <= self.ttl:
            return None
        self._said = True
        return Note(False, unusable_line(state, now - self._since, self.ttl))


def unusable_line(state: str, seconds: float, ttl: float) -> str:
    """The ``!`` line of a Redis unusable for ``seconds`` (past ``ttl``) whose check says ``state``. Pure."""
    return (f"the API cannot use Redis (redis.url) for {seconds:.1f}s (registry.ttl {ttl:g}s): {state}. Ads still "
            "flow, but each API node counts rate limits on its own and reads records without the cache; gamead "
            "doctor (redis_unwritable) says what to fix")


__all__ = ["RedisNote", "unusable_line"]
