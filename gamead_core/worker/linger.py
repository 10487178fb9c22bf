"""How long an idle worker woken by an arriving ad waits for more before it pulls (:class:`Linger`, issue 14).

At a steady flow an idle worker is woken for nearly every ad, and each wake-up is a round of its own: a pull,
a held-ads announcement, an outcome write, an ack and a long poll put back, each a message nats-server handles
alone, on cores that went cold in between (session 23 measured one ad's work at 1.4-3.5× its back-to-back cost
after a 1-10 ms gap). Waiting ``worker.linger_ms`` after such a wake-up lets the ads arriving meanwhile share
that round, as Kafka's producer ``linger.ms`` and Nagle's algorithm trade a few milliseconds for fewer, fuller
writes. Measured (``benchmarks/bench_sweep.py``, 1,000 ads/s, 2 workers, session 26): all roles 1.42 → 1.08 ms
of CPU per ad at 5 ms, 1.03 at 15 ms; p95 submit→completed 4.6 → 12 ms and 31 ms.

The wait is taken only where it can gather something: when the recent arrival rate says at least one more ad is
expected within it (rate × linger ≥ 1). A trickle (an urgent ad now and then, fewer than 1,000 / ``linger_ms``
ads a second for this worker) starts at once, as before; a burst after a quiet spell does too, for its first
wake-up. The rate is the ads the worker took between two wake-ups over the time between them, smoothed
(half the new reading, half the old).
"""

from __future__ import annotations

__all__ = ["Linger"]


class Linger:
    """The linger decision of one worker's pull loop. Pure: times are passed in (monotonic seconds).

    ``linger`` is ``worker.linger_ms`` in seconds (0 = never wait). Call :meth:`took` with the number of ads
    every pull brought, and :meth:`after_wake` when a long poll woke the idle loop: it answers how many seconds
    to wait before pulling (``linger`` or 0.0)."""

    __slots__ = ("_linger", "_rate", "_since", "_ads")

    def __init__(self, linger: float) -> None:
        self._linger = linger
        self._rate = 0.0  #: smoothed arrival rate, ads/s
        self._since: float | None = None  #: monotonic time of the previous wake-up
        self._ads = 0  #: ads taken since then

    @property
    def rate(self) -> float:
        """The smoothed arrival rate this decision uses, ads per second."""
        return self._rate

    def took(self, ads: int) -> None:
        """A pull brought ``ads`` ads (the woken ad's included)."""
        self._ads += ads

    def after_wake(self, now: float) -> float:
        """Seconds to wait before pulling, woken by an arriving ad at ``now``: ``linger`` when the rate measured
        up to now expects at least one more ad within it, else 0.0."""
        if self._linger <= 0:
            return 0.0
        if self._since is not None and now > self._since:
            self._rate = (self._rate + self._ads / (now - self._since)) / 2
        self._since, self._ads = now, 0
        return self._linger if self._rate * self._linger >= 1.0 else 0.0
