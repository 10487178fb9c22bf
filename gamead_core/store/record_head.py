"""What a listing needs of a stored ad record without decoding it: its id, status, priority and submission time,
read off the front of the JSON gamead writes (:func:`gamead_core.store.ads.encode`: those four fields first, in
that order, ``submittedAt`` as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``).

``GET /ads`` reads every record of its window to count and order them but shows at most 500: decoding each as an
:class:`~gamead_core.models.AdRecord` (pydantic, ~70 µs for a completed record of ~2.7 KB) was the largest part of
a 40,000-record read (py-spy, list37); this is ~2 µs. A record in any other form (written by another gamead, or
not a record) is not read here (None): the caller decodes it whole, as before. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from gamead_core.models import AdStatus

_HEAD = re.compile(rb'\{"id":"([0-9A-Za-z_-]{1,64})","status":"([a-z]{1,16})","priority":([0-9]{1,3}),'
                   rb'"submittedAt":"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?)Z"')
_STATUSES = {status.value.encode(): status for status in AdStatus}
_EPOCH = datetime(1970, 1, 1)  # naive: the text read is UTC, its ``Z`` cut off
_MICRO = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class RecordHead:
    """The listing fields of a record: ``micros`` (``submittedAt`` in µs since the epoch), ``id``, ``status``,
    ``priority``."""

    micros: int
    id: str
    status: AdStatus
    priority: int


def record_head(data: bytes) -> RecordHead | None:
    """The listing fields of the stored record ``data`` when it starts as gamead writes them, else None (decode
    it whole). ``micros`` is what :func:`gamead_core.store.listing.record_key` gives for the decoded record."""
    found = _HEAD.match(data)
    if found is None:
        return None
    status = _STATUSES.get(found[2])
    if status is None:
        return None
    try:
        at = datetime.fromisoformat(found[4].decode())
    except ValueError:  # a month 13, a 25th hour: the whole decode says what is wrong
        return None
    return RecordHead((at - _EPOCH) // _MICRO, found[1].decode(), status, int(found[3]))
