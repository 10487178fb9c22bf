"""Retry delays: exponential with full jitter (pure; the random source is injectable)."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_ceiling(attempt: int, *, base: float, cap: float) -> float:
    """The largest delay after failed attempt number ``attempt`` (1-based): ``min(cap, base·2^(attempt−1))``."""
    if attempt < 1:
        return 0.0
    return float(min(cap, base * 2 ** min(attempt - 1, 60)))


def backoff(
    attempt: int, *, base: float, cap: float, uniform: Callable[[float, float], float] = random.uniform
) -> float:
    """Seconds to wait before the attempt after ``attempt``: uniform in ``[0, ceiling]`` (full jitter).

    Full jitter spreads a burst of failures evenly over the window, so a retry storm does not arrive as
    one wave (see AWS' "Exponential Backoff And Jitter").
    """
    return uniform(0.0, backoff_ceiling(attempt, base=base, cap=cap))
