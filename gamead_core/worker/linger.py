"""How long an idle worker woken by an arriving ad waits for more before it pulls (:class:`Linger`, issue 14).

At a steady flow an idle worker is woken for nearly every ad, and each wake-up is a round of its own: a pull,
a held-ads announcement, an outcome write, an ack and a long poll put back, each a message nats-server handles
alone, on cores that went cold in between (session 23 measured one ad's work at 1.4-3.5× its back-to-back cost
after a 1-10 ms gap). Waiting ``worker.linger_ms`` after such a wake-up lets the ads arriving meanwhile share
that round, as Kafka's producer ``linger.ms`` and Nagle's algorithm trade a few milliseconds for fewer, fuller
writes. Measured (``benchmarks/bench_sweep.py``, 1,000 ads/s, 2 workers, session 26): all roles 1.44 → 1.10 ms
of CPU per ad at 5 ms, 1.03 at 15 ms; p95 submit→completed 4.6 → 12 ms and 31 ms.

Two bounds:

* **Only where it can gather something**: when the recent arrival rate says at least one more ad is expected
  within the linger (rate × linger ≥ 1). The rate is the ads the worker took between two wake-ups over the time
  between them, smoothed with a weight that fades with that time (``exp(−gap / (10 × linger))`` for the old
  value): a flow sets it within a few wake-ups, and one silence of 10 lingers or more forgets it, so an urgent ad
  after a quiet spell starts at once, as does a trickle and a burst's first ad. (A drill saw isolated P1 ads
  wait the whole 100 ms linger after 5-30 s of silence when the old value was only halved per wake-up.)
* **At most the linger per ad**: the wait ends ``linger`` after the *arrival* of the oldest ad waiting in the
  worker's inboxes, not after the wake-up: an ad that arrived while the worker was busy has waited already (the
  drill saw P5 ads wait up to twice a 100 ms linger when it was counted from the wake-up).
"""

from __future__ import annotations

import math

__all__ = ["Linger"]

#: the smoothing's time constant, in lingers: a silence this long leaves 1/e of the old rate
_MEMORY = 10.0


class Linger:
    """The linger decision of one worker's pull loop. Pure: times are passed in (monotonic seconds).

    ``linger`` is ``worker.linger_ms`` in seconds (0 = never wait). Call :meth:`took` with the number of ads
    every pull brought, and :meth:`after_wake` when a long poll woke the idle loop: it answers how many seconds
    to wait before pulling (between 0.0 and ``linger``)."""

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

    def after_wake(self, now: float, arrived: float | None = None) -> float:
        """Seconds to wait before pulling, woken at ``now`` by an ad that arrived at ``arrived`` (the oldest
        waiting; default ``now``): what is left of ``linger`` since that arrival when the rate measured up to
        now expects at least one more ad within the linger, else 0.0."""
        if self._linger <= 0:
            return 0.0
        if self._since is not None and now > self._since:
            gap = now - self._since
            keep = math.exp(-gap / (_MEMORY * self._linger))
            self._rate = keep * self._rate + (1.0 - keep) * (self._ads / gap)
        self._since, self._ads = now, 0
        if self._rate * self._linger < 1.0:
            return 0.0
        return max(0.0, min(self._linger, self._linger - (now - (now if arrived is None else arrived))))
