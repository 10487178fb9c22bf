"""A clock moved by hand for code that takes one (``clock=``, ``timer=``): ``clock.now += 3`` is three seconds
later at once, no waiting and no sleep-and-assert."""

from __future__ import annotations


class HandClock:
    """Seconds (monotonic or epoch, as the code under test reads them): :attr:`now`, from ``now`` given."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
