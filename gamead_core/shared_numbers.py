"""Numbers read from shared state (registry heartbeats, job documents) that a hand edit or a buggy tool may have
written past what gamead can use (attack31b F5's kind): ``processed: 10**400`` in one heartbeat made every
``GET /v1/workers`` a 500 (``orjson``: integer exceeds 64-bit range); a job's ``leaseUntil`` of ``-1e300`` made
``gamead doctor`` fail formatting it. Such a number is clamped into range as it is read and said once per field
(WARNING); the next write by gamead replaces it. Pure but for that log line.
"""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo

log = logging.getLogger(__name__)

#: The largest count a shared document may carry: 2**53, what a float, a rate and every JSON reader hold exactly.
MAX_COUNT = 2**53
#: The latest time a stored time may name, epoch seconds (the end of year 9999, the last a timestamp can show).
MAX_EPOCH = 253_402_300_799.0
_said: set[str] = set()  #: the fields whose unusable value was logged (once each)


def _say(field: str | None, shown: object) -> None:
    if str(field) not in _said:
        _said.add(str(field))
        log.warning("a shared %s is out of range (a value gamead did not write): read as %s", field, shown)


def _count(value: int, info: ValidationInfo) -> int:
    """``value`` clamped to ``0 … MAX_COUNT`` (said once per field when it was outside)."""
    if 0 <= value <= MAX_COUNT:
        return value
    _say(info.field_name, clamped := min(max(value, 0), MAX_COUNT))
    return clamped


def _epoch(value: float, info: ValidationInfo) -> float:
    """``value`` (epoch seconds) clamped to ``0 … MAX_EPOCH``; NaN reads 0 (said once per field)."""
    if 0.0 <= value <= MAX_EPOCH:
        return value
    _say(info.field_name, clamped := MAX_EPOCH if value > MAX_EPOCH else 0.0)
    return clamped


#: A count, pid or size in a shared document: an ``int`` clamped to ``0 … 2**53``.
Count = Annotated[int, AfterValidator(_count)]
#: A time in a shared document, epoch seconds: a ``float`` clamped to 1970 … the end of year 9999.
Epoch = Annotated[float, AfterValidator(_epoch)]

__all__ = ["MAX_COUNT", "MAX_EPOCH", "Count", "Epoch"]
