"""Shared values gamead reads and cannot use (attack31b F5): a time in a lease or an override past year 9999 (it
passes ``isfinite`` yet makes every timestamp of it raise), a JSON value gamead did not write. Such a value is
read as none and said once per key and value (:func:`said_unusable`); ``gamead doctor`` names it
(:mod:`gamead_core.doctor.shared`). The counters have their own rule (``gamead_core.worker.lost_count``)."""

from __future__ import annotations

import logging

from gamead_core.shared_numbers import MAX_EPOCH

log = logging.getLogger(__name__)


def usable_time(t: float) -> bool:
    """Whether ``t`` (epoch seconds, read from shared state) is a time gamead can use: from 1970 to the end of
    9999. A later one (``1e300``) passes ``isfinite`` yet makes every timestamp of it raise (attack31b F5's kind);
    such a value is read as none. Pure."""
    return 0.0 <= t <= MAX_EPOCH


_said: dict[str, bytes] = {}  #: key → the unusable value last logged for it


def said_unusable(key: str, data: bytes) -> None:
    """Log once per key and value that the shared value of ``key`` cannot be used and is read as none; returns
    None (what the reader then takes)."""
    if _said.get(key) != data:
        _said[key] = data
        log.warning("the shared value %r holds %r, which gamead cannot use: read as none until it is rewritten",
                    key, data[:80])
    return None


__all__ = ["MAX_EPOCH", "said_unusable", "usable_time"]
