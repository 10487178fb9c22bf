"""``POST /ads`` and ``POST /ads/batch`` refused while the full ad-record bucket would drop live ads' records
(attack31a F1): 503 ``records_full``.

The decision is the stats sampler's (:mod:`gamead_core.stats.records_room`, read once a second with the rest of
``/v1/stats`` ``records``): no NATS call is made per request. A reading older than :data:`STALE_AFTER` seconds (the
sampler failing: then NATS is in trouble and submits say so themselves) refuses nothing. A batch is refused whole,
before its rate-limit tokens are taken: every ad of it would add a record.
"""

from __future__ import annotations

import time
from typing import Any

from gamead_core.api.errors import ApiError

#: seconds after which the sampler's reading of the bucket no longer refuses anything
STALE_AFTER = 5.0


class RecordsFull(ApiError):
    """503: the ad-record bucket is over ``records.refuse_at`` of ``records.max_bytes`` and the records it would drop
    next include live ads' (``details``: ``usedBytes``, ``maxBytes``, ``refuseAt``, ``oldestLiveAdAgeSeconds``,
    ``oldestRecordAgeSeconds``); ``Retry-After``."""

    status, code = 503, "records_full"


def check_records_room(app: Any) -> None:
    """Raise :class:`RecordsFull` when the API's stats sampler (``app.state.stats_sampler``) last read, within
    :data:`STALE_AFTER` seconds, that intake must stop; else nothing (no sampler yet: nothing)."""
    sampler = getattr(app.state, "stats_sampler", None)
    records = getattr(sampler, "records", None)
    if not records or not records.get("refusing"):
        return
    read_at = sampler.records_at  # type: ignore[union-attr]
    if read_at is None or time.monotonic() - read_at > STALE_AFTER:
        return
    used, limit = records.get("bytes"), records.get("maxBytes")
    share = f"{used / limit:.0%}" if used and limit else "over its mark"
    raise RecordsFull(
        f"the ad-record bucket is {share} full (records.max_bytes = {limit}) and the records it would drop next "
        f"include live ads' (the oldest ad waiting is {records.get('oldestLiveAdAgeSeconds')}s old, the oldest "
        f"record {records.get('oldestRecordAgeSeconds')}s): new ads are refused until workers finish the oldest "
        "ones or the bucket gets room (raise records.max_bytes); retry after Retry-After",
        details={"usedBytes": used, "maxBytes": limit, "refuseAt": records.get("refuseAt"),
                 "oldestLiveAdAgeSeconds": records.get("oldestLiveAdAgeSeconds"),
                 "oldestRecordAgeSeconds": records.get("oldestRecordAgeSeconds")})
