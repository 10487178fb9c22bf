"""The one rule for every time gamead reads: **a time without a UTC offset is UTC**.

``2024-01-01T00:00:00`` means ``2024-01-01T00:00:00Z``; a time with an offset (``+02:00``) is converted to
UTC. Every datetime the API accepts (DLQ filters ``since``/``until``, the times of imported DLQ entries, job
documents) is read through :data:`UtcDatetime`, so every time gamead compares or stores is timezone-aware
UTC and two times can always be compared (a naive and an aware datetime cannot: that was a 500). A time out
of the representable range (years 1-9999 once in UTC) fails validation (422), never a 500.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime: naive → read as UTC, aware → converted. Raises ValueError when the
    conversion leaves the representable range (e.g. ``0001-01-01T00:00:00+01:00``). Pure."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError as exc:
        raise ValueError(f"time {value.isoformat()} is out of range once converted to UTC") from exc


#: A datetime field or query parameter that follows the module's rule (naive = UTC; always aware UTC).
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
