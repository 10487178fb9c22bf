"""The one way gamead writes a rate's figure (ads/s, attempts/s), wherever it prints one: ``gamead scale status``
and the autoscaler's reason line, ``gamead top`` (live and ``--once``), the per-worker lines. Pure.

Before (polish47) ``top`` said ``queued 0.1 ads/s`` (one decimal) where ``scale status`` said ``0.100 ads/s`` of
the same rate (two significant digits, a third when the rounding reached the next decade)."""

from __future__ import annotations

import math


#: the highest rate written as itself: above it a rate's figure would run on (``1e300``: 400 characters)
CEILING = 999_999_999.9
#: the lowest positive rate written as itself: below it ``<0.001`` (``5e-324``: 330 characters)
FLOOR = 0.001


def rate_figure(per_sec: float) -> str:
    """``40.0``, ``1,500.0`` at 1 and above (and 0), below 1 to 2 significant digits (``0.022``, ``0.50``,
    ``0.10``; ``0.0999`` is ``0.10``, ``0.996`` is ``1.0``): one decimal printed a 45 s analysis's 0.022 ads/s per
    worker as ``0.0``, beside ``needs 3`` that it could not explain (attack31c F5). A fixed column steps it from
    1,000 on (``1.4k``: :func:`gamead_cli.tui.view_figures.per_second`). At most 14 characters whatever it is given
    (probe47 F6): a negative rate or ``-0.0`` is ``0.0``, ``nan`` or an infinity ``-`` (no figure), a positive rate
    under :data:`FLOOR` ``<0.001``, one over :data:`CEILING` ``>999,999,999.9``. Pure."""
    if not math.isfinite(per_sec):
        return "-"
    if per_sec <= 0:
        return "0.0"
    if per_sec < FLOOR:
        return f"<{FLOOR:g}"
    if per_sec > CEILING:
        return f">{CEILING:,.1f}"
    if per_sec >= 1:
        return f"{per_sec:,.1f}"
    decade = math.floor(math.log10(per_sec))
    text = f"{per_sec:.{1 - decade}f}"
    if float(text) >= 10.0 ** (decade + 1):  # rounded up to the next decade: its 2 digits have one place less
        text = f"{per_sec:.{max(1, -decade)}f}"
    return text


__all__ = ["rate_figure"]
