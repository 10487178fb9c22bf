"""How a rate's window is said, the one wording of the API's reason lines and the CLI (``gamead top``, ``gamead
scale status``, ``gamead up``'s console): ``last minute``, ``last 11 s``, ``last 5 min``. Every rate printed says
its window (attack43b F5: the autoscaler's ``arriving 2.2 ads/s`` named none). Pure."""

from __future__ import annotations

from typing import Any, Final

#: seconds of the API's "last minute" rates (``gamead_core.stats.rates.RATE_WINDOW`` is this one)
RATE_WINDOW_SECONDS: Final[int] = 60


def span(seconds: float) -> str:
    """``300`` → ``5 min``, ``45`` → ``45 s``: how far back a sparkline or a rate reaches. Pure."""
    return f"{seconds / 60:g} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:.0f} s"


def window_words(seconds: Any) -> str:
    """The window of a rate for people: ``last minute`` (60 s, or unknown: None), ``last 11 s`` (a sampler that
    started 11 s ago), ``last 5 min``. Pure."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or round(seconds) == RATE_WINDOW_SECONDS:
        return "last minute"
    return f"last {span(round(seconds))}"


__all__ = ["RATE_WINDOW_SECONDS", "span", "window_words"]
