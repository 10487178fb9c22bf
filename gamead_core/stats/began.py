"""When an API node's stats sampler began counting, on nats-server's clock: what tells a worker's counts that are
new (it started after) from its past (review33 R6).

The sampler is built with the app, before the node's first sample of nats-server's clock
(:mod:`gamead_core.clock`), so ``clock()`` then is the host's: an API 5 min behind took every worker started in
the 5 min before it for one started after, and counted its whole total as completions at its first read (a spike
in ``completedPerSec``, the autoscaler's arrival figures); one ahead dropped the first counts of workers started
after it. So the start is kept on the local boot-time clock and put on nats-server's once the process has a
sample; until then nothing is judged fresh.
"""

from __future__ import annotations

from collections.abc import Callable

from gamead_core import clock


class Began:
    """The sampler's start. ``now`` is the sampler's clock (Unix seconds): nats-server's
    (:func:`gamead_core.clock.now`), or any other (a test's), taken as it is."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._at: float | None = now()
        self._local: float | None = None
        if now is clock.now and clock.CLOCK.offset is None:  # the host's clock yet: re-read once sampled
            self._at, self._local = None, clock.local()

    def at(self) -> float | None:
        """The start, Unix seconds on the sampler's clock; None while this process has no sample of
        nats-server's clock (its start is not known on it yet)."""
        if self._at is None and self._local is not None and clock.CLOCK.offset is not None:
            self._at = clock.now() - (clock.local() - self._local)
        return self._at


__all__ = ["Began"]
