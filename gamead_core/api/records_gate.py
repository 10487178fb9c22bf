"""``POST /ads`` and ``POST /ads/batch`` refused while the full ad-record bucket would drop live ads' records
(attack31a F1): 503 ``records_full``.

The decision is the stats sampler's (:mod:`gamead_core.stats.records_room`, read once a second with the rest of
``/v1/stats`` ``records``): no NATS call is made per request. A reading older than :data:`STALE_AFTER` seconds (the
sampler failing: then NATS is in trouble and submits say so themselves) refuses nothing. A batch is refused whole,
before its rate-limit tokens are taken: every ad of it would add a record. A single ``POST /ads`` takes no token
either while the gate refuses, nor while the storage gate does (left39a) (:func:`token_deferred`: the gate
middleware leaves it to the route, which takes it once the ad is let through, :func:`take_token`), and a keyed
repeat, which adds no record, is still answered (review31 R2).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.types import Scope

from gamead_core.api.errors import ApiError
from gamead_core.api.quota import RateQuota
from gamead_core.bound_text import number_text

#: seconds after which the sampler's reading of the bucket no longer refuses anything
STALE_AFTER = 5.0


class RecordsFull(ApiError):
    """503: the ad-record bucket is over ``records.refuse_at`` of ``records.max_bytes`` and the records it would drop
    next include live ads' (``details``: ``usedBytes``, ``maxBytes``, ``refuseAt``, ``recordsBeforeLive``,
    ``refuseBelow``); ``Retry-After``."""

    status, code = 503, "records_full"


def records_refusal(app: Any) -> RecordsFull | None:
    """The :class:`RecordsFull` to answer when the API's stats sampler (``app.state.stats_sampler``) last read,
    within :data:`STALE_AFTER` seconds, that intake must stop; else None (no sampler yet: None)."""
    sampler = getattr(app.state, "stats_sampler", None)
    records = getattr(sampler, "records", None)
    if not records or not records.get("refusing"):
        return None
    read_at = sampler.records_at  # type: ignore[union-attr]
    if read_at is None or time.monotonic() - read_at > STALE_AFTER:
        return None
    used, limit, before = records.get("bytes"), records.get("maxBytes"), records.get("recordsBeforeLive")
    share = f"{used / limit:.0%}" if used and limit else "over its mark"
    return RecordsFull(
        f"the ad-record bucket is {share} full (records.max_bytes = {number_text(limit)}) and the records it would "
        f"drop next include live ads' (only {number_text(before)} of its {number_text(records.get('keys'))} records "
        "are dropped before the oldest waiting ad's): new ads are refused until workers finish the oldest ones or the "
        "bucket gets room (raise records.max_bytes); retry after Retry-After",
        details={"usedBytes": used, "maxBytes": limit, "refuseAt": records.get("refuseAt"),
                 "recordsBeforeLive": before, "refuseBelow": records.get("refuseBelow")})


def token_deferred(scope: Scope, path: str) -> bool:
    """True for a ``POST /ads`` (``path``) while this gate refuses (review31 R2) or the store is known failing
    (:mod:`gamead_core.api.storage_gate`, left39a): the rate-limit middleware then leaves its token to the route
    (``scope["state"]["rate_quota"]``), which takes it only once the ad is let through, so a refused submit spends
    none."""
    app = scope.get("app")
    if path != "/ads" or scope["method"] != "POST" or app is None:
        return False
    return records_refusal(app) is not None or storage_failing(app)


def storage_failing(app: Any) -> bool:
    """True while this API node's storage probe says its store is failing (its submits refused but for a trial)."""
    storage = getattr(getattr(app.state, "link", None), "storage", None)
    return storage is not None and storage.refusing() is not None


async def take_token(request: Request) -> None:
    """Take the token :func:`token_deferred` left to the route, if it did; raises :class:`RateLimited` (429)."""
    quota: RateQuota | None = request.scope.get("state", {}).get("rate_quota")
    if quota is None:
        return
    granted, decision = await quota.take(1)
    if granted == 0:
        raise quota.refused(decision)
