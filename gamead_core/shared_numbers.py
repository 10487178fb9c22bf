"""Numbers read from shared state (registry heartbeats, job documents) that a hand edit or a buggy tool may have
written past what gamead can use (attack31b F5's kind): ``processed: 10**400`` in one heartbeat made every
``GET /v1/workers`` a 500 (``orjson``: integer exceeds 64-bit range); a job's ``leaseUntil`` of ``-1e300`` made
``gamead doctor`` fail formatting it. Such a number is clamped into range as it is read and said once per field
(WARNING); the next write by gamead replaces it. Pure but for that log line.

A shared counter's key (KV ``gamead_scaling``: the lost attempts', the write checks') is not clamped: a value that
is no count (:func:`unusable_count`) is read as 0 (:func:`count_in`), and the next change rewrites it.
"""

from __future__ import annotations

import logging
import re
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


def unusable_count(value: bytes | None) -> str | None:
    """Why ``value``, a shared counter key's (KV ``gamead_scaling``: :mod:`gamead_core.worker.lost_count`,
    :mod:`gamead_core.queue.check_count`), is no count gamead can use (a decimal integer from 0 to
    :data:`MAX_COUNT`), clipped to 40 characters; None when it is one (or absent). Pure."""
    text = (value or b"0")[:4400].decode("utf-8", "replace").strip()
    shown = text if len(text) <= 40 else f"{text[:37]}… ({len(value or b'')} bytes)"
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return f"{shown!r} is not a decimal integer"
    if len(text) > 20 or not 0 <= int(text) <= MAX_COUNT:
        return f"{shown} is outside 0 … 2**53"
    return None


def count_in(value: bytes | None) -> int:
    """The count a shared counter key's ``value`` holds; 0 when absent or unusable (:func:`unusable_count`: the
    next change rewrites it). Pure."""
    return 0 if unusable_count(value) is not None else int((value or b"0").decode())


#: A count, pid or size in a shared document: an ``int`` clamped to ``0 … 2**53``.
Count = Annotated[int, AfterValidator(_count)]
#: A time in a shared document, epoch seconds: a ``float`` clamped to 1970 … the end of year 9999.
Epoch = Annotated[float, AfterValidator(_epoch)]

__all__ = ["MAX_COUNT", "MAX_EPOCH", "Count", "Epoch", "count_in", "unusable_count"]
