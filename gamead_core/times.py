"""The one rule for every time gamead reads: **a time without a UTC offset is UTC**.

``2024-01-01T00:00:00`` means ``2024-01-01T00:00:00Z``; a time with an offset (``+02:00``) is converted to
UTC. Every datetime the API accepts (DLQ filters ``since``/``until``, the times of imported DLQ entries, job
documents) is read through :data:`UtcDatetime`, so every time gamead compares or stores is timezone-aware
UTC and two times can always be compared (a naive and an aware datetime cannot: that was a 500). A time out
of the representable range (years 1-9999 once in UTC) fails validation (422), never a 500.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime: naive → read as UTC, aware → converted. Raises ValueError when the
    conversion leaves the representable range (e.g. ``0001-01-01T00:00:00+01:00``). Pure."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError as exc:
        raise ValueError(f"time {value.isoformat()} is out of range once converted to UTC") from exc


_ISO_DATE = re.compile(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}")


def iso_time(value: Any) -> Any:
    """Read a string as an ISO-8601 date or time (``datetime.fromisoformat``: ``Z`` and offsets, a date alone
    is its midnight); other values pass unchanged. Raises ValueError for any other string: pydantic would read
    ``"0.5"`` as a Unix time, which a client never means (the API documents ``format: date-time``). Parsing
    here also lets request bodies be validated in pydantic's strict mode (``gamead_core.api.body``)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if _ISO_DATE.match(text):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError("must be an ISO-8601 time, e.g. 2026-11-24T10:00:00Z (no offset = UTC)")


def read_utc(text: str) -> datetime:
    """A time string read exactly as the API reads one (:data:`UtcDatetime`): ISO 8601, no offset = UTC, converted
    to aware UTC. Raises ValueError with the API's reason (not ISO 8601, or out of range once in UTC), so a client
    can refuse before sending what the API would answer 422 (``gamead dlq list --since``, ``gamead audit``)."""
    return as_utc(iso_time(text))


#: A datetime field or query parameter that follows the module's rule (naive = UTC; always aware UTC); a string
#: must be ISO-8601.
UtcDatetime = Annotated[datetime, BeforeValidator(iso_time), AfterValidator(as_utc)]


def check_window(since: datetime | None, until: datetime | None) -> None:
    """Refuse a time window that can hold nothing: ``since`` (at or after) not before ``until`` (before), e.g.
    ``--since 2h --until 3h``, which used to answer an empty list as if nothing matched. Either may be None (open).
    Raises ValueError naming both times. Pure."""
    if since is not None and until is not None and since >= until:
        raise ValueError(f"since ({since.isoformat()}) must be before until ({until.isoformat()}): the window "
                         "[since, until) is empty; swap them, or drop one")


def clock_utc(epoch: float, now: float) -> str:
    """Epoch seconds as gamead's human output says a time beside others of the day: ``16:04:55 UTC``, with its date
    (``2026-12-06 16:04:55 UTC``) when it is not ``now``'s UTC day. Pure. regress44 F5: a reason said ``until
    2026-12-05T16:04:55.442Z`` where the verb said ``until 16:04:55 UTC``; polish47: the lapse of the autoscaler's
    lease (``scale status``) and the doctor's lease times said ISO stamps too (JSON fields stay ISO)."""
    when, today = datetime.fromtimestamp(epoch, timezone.utc), datetime.fromtimestamp(now, timezone.utc).date()
    day = "" if when.date() == today else f"{when.date().isoformat()} "
    return f"{day}{when:%H:%M:%S} UTC"
