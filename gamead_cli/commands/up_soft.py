"""What ``gamead up``'s console says of the API's soft checks: a Redis (``redis.url``) it cannot use (attack41a F4)
and spans its exporter cannot send (attack45 F6).

Neither makes a node unready (``/readyz`` 200, ``checks.redis`` / ``checks.tracing`` ``degraded: …``): without
Redis the API counts rate limits on its own and reads records without the cache; without a collector the traces
are missing; the ads flow either way. Before, ``gamead up`` said nothing of them: only ``/readyz``, ``gamead doctor``
(``redis_unwritable``) and the children's logs did. :class:`SoftNote` turns the readiness watch's readings into one
``!`` line once a check has been not ``ok`` for more than ``registry.ttl`` in a row (one reading that is not ``ok``
is often a single timed-out call) and one ``✓`` line when it is ``ok`` again. Pure (clocked by the caller).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gamead_core.scaling.nats_watch import Note
from gamead_core.scaling.ready_watch import Reading


class SoftNote:
    """The console notes of one soft check of the API's ``/readyz``, one reading at a time (:meth:`observe`).
    ``check``: the :class:`Reading`'s field (``redis``, ``tracing``); ``ttl``: ``registry.ttl`` (s), how long it
    must stay not ``ok`` before it is said; ``bad(state, seconds, ttl)`` / ``good(seconds)``: the two lines."""

    def __init__(self, check: str, ttl: float, bad: Callable[[str, float, float], str],
                 good: Callable[[float], str], clock: Callable[[], float] = time.monotonic) -> None:
        self.check, self.ttl, self.bad, self.good, self.clock = check, ttl, bad, good, clock
        self._since: float | None = None  #: monotonic: the first reading of the present spell of the check not ok
        self._said = False  #: the present spell was said

    def observe(self, reading: Reading) -> Note | None:
        """The note for one reading (its check: ``ok``, ``disabled``, ``degraded: …``; None, or no answer: not
        counted), or None."""
        state = getattr(reading, self.check) if reading.ready is not None else None
        if state is None or state == "disabled":
            return None
        now = self.clock()
        if state == "ok":
            since, said = self._since, self._said
            self._since, self._said = None, False
            return None if not said or since is None else Note(True, self.good(now - since))
        if self._since is None:
            self._since = now
        if self._said or now - self._since <= self.ttl:
            return None
        self._said = True
        return Note(False, self.bad(state, now - self._since, self.ttl))


def redis_note(ttl: float, clock: Callable[[], float] = time.monotonic) -> SoftNote:
    """The notes of ``checks.redis``: :func:`unusable_line`, then the way back."""
    return SoftNote("redis", ttl, unusable_line, lambda seconds: (
        f"the API uses Redis (redis.url) again after {seconds:.1f}s: rate limits are shared and the record cache is "
        "used again"), clock)


def unusable_line(state: str, seconds: float, ttl: float) -> str:
    """The ``!`` line of a Redis unusable for ``seconds`` (past ``ttl``) whose check says ``state``. Pure."""
    return (f"the API cannot use Redis (redis.url) for {seconds:.1f}s (registry.ttl {ttl:g}s): {state}. Ads still "
            "flow, but each API node counts rate limits on its own and reads records without the cache; gamead "
            "doctor (redis_unwritable) says what to fix")


def tracing_note(ttl: float, where: str, clock: Callable[[], float] = time.monotonic) -> SoftNote:
    """The notes of ``checks.tracing``: spans the API's exporter could not send; ``where``: where they go (``sent by
    OTLP http/protobuf to http://…``, :func:`~gamead_core.telemetry.tracing.tracing_line`'s words)."""
    return SoftNote("tracing", ttl, lambda state, seconds, ttl_: (
        f"the API's exporter cannot send its spans ({where}): {state.removeprefix('degraded: ')}. Ads still flow; "
        "their traces are missing until the collector takes them (the workers send to the same place)"),
        lambda seconds: f"the API's spans are exported again after {seconds:.1f}s ({where})", clock)

__all__ = ["SoftNote", "redis_note", "tracing_note", "unusable_line"]
