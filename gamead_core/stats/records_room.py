"""Whether the full ad-record bucket is about to drop a live ad's record (attack31a F1): the API's intake gate.

The bucket (``records.max_bytes``, ``discard: old``: :mod:`gamead_core.store.retention`) drops its oldest records
when full. Dropping a completed or failed record only shortens how long ``GET /ads/{id}`` (and its Idempotency-Key)
answers, and a bucket full of them is the steady state of a busy service (4 GiB ≈ 25 min at 1,000 ads/s). Dropping
a *live* ad's record is not harmless: its budget (``attempts``) is kept there, and a redelivery recreates the record
from the message with the budget of the first attempt (the worker then keeps a floor: :mod:`gamead_core.worker.
records`). So intake stops before that happens:

* the bucket holds at least ``records.refuse_at`` × ``records.max_bytes`` bytes (0.9: the rest is headroom for the
  workers' updates, which keep writing while intake is refused), and
* the oldest live ad (the first message of any work stream: with ``WorkQueue`` retention every message there is an
  ad not yet acknowledged, queued or retrying) was submitted within the oldest ``1 - refuse_at`` share of the time
  the bucket's records span (from its oldest record, the one dropped next, to now): the records dropped before the
  next reading may be live ones. Records are assumed spread evenly over that span (an estimate; a live record is
  at least as new as its ad's message, so a live ad older than the bucket's oldest record is always at risk).

Dead ads' records (no TTL, kept for a DLQ replay) are not protected: ``gamead doctor`` names an entry without its
record (``entry_without_record``) and ``--repair`` recreates it.

:func:`at_risk` is the pure rule; :func:`read_room` reads what it needs (one direct get of the bucket's first
record and of each work stream's first message), only when the bucket is over the mark. The API reads it in its
stats sampler, once a second (:class:`~gamead_core.stats.sampler.QueueSampler`), never per request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.errors import error_text
from gamead_core.queue.depth import peek_next
from gamead_core.stats.document import records_section


def over_mark(used: int, max_bytes: int | None, refuse_at: float) -> bool:
    """True when ``used`` bytes reach ``refuse_at`` (a share) of ``max_bytes`` (None or ≤ 0: unbounded). Pure."""
    return bool(max_bytes) and max_bytes > 0 and used >= refuse_at * max_bytes  # type: ignore[operator]


def at_risk(used: int, max_bytes: int | None, refuse_at: float, *, bucket_oldest: float | None,
            live_oldest: float | None, now: float) -> bool:
    """Whether new ads must be refused (module doc). ``used``/``max_bytes``: the bucket's bytes and limit;
    ``bucket_oldest``: epoch seconds of its oldest record (None: unknown, taken as at risk once over the mark);
    ``live_oldest``: epoch seconds of the oldest message in the work streams (None: no ad is live). Pure."""
    if not over_mark(used, max_bytes, refuse_at) or live_oldest is None:
        return False
    if bucket_oldest is None:
        return True
    span = max(0.0, now - bucket_oldest)
    return live_oldest - bucket_oldest <= (1.0 - refuse_at) * span


async def _first_time(js: JetStreamContext, stream: str, subject: str) -> float | None:
    head = await peek_next(js, stream, subject, 0)
    return head.time.timestamp() if head is not None and head.time is not None else None


async def read_room(js: JetStreamContext, info: Any, refuse_at: float, partitions: int,
                    now: float | None = None) -> dict[str, Any]:
    """The bucket's room, from its ``stream_info`` (``info``) and, over the mark only, the times of its oldest record
    and of each work stream's oldest message: ``{"refuseAt": share, "refusing": bool, "oldestRecordAgeSeconds",
    "oldestLiveAdAgeSeconds"}`` (the ages None when not read or nothing is there). Never raises: a failed read adds
    ``"roomError"`` and refuses nothing (intake as before the gate)."""
    now = time.time() if now is None else now
    try:
        return await _read_room(js, info, refuse_at, partitions, now)
    except Exception as exc:  # noqa: BLE001 - said in /v1/stats; the next sample reads again
        return {"refuseAt": refuse_at, "refusing": False, "oldestRecordAgeSeconds": None,
                "oldestLiveAdAgeSeconds": None, "roomError": error_text(exc)}


async def _read_room(js: JetStreamContext, info: Any, refuse_at: float, partitions: int,
                     now: float) -> dict[str, Any]:
    used, limit = int(info.state.bytes or 0), info.config.max_bytes
    room: dict[str, Any] = {"refuseAt": refuse_at, "refusing": False, "oldestRecordAgeSeconds": None,
                            "oldestLiveAdAgeSeconds": None}
    if not over_mark(used, limit, refuse_at):
        return room
    bucket, *heads = await asyncio.gather(
        _first_time(js, names.ADS_BUCKET_STREAM, names.kv_all(names.ADS_BUCKET)),
        *(_first_time(js, names.work_stream(p), names.work_wildcard(p)) for p in range(partitions)))
    live = min((t for t in heads if t is not None), default=None)
    room["refusing"] = at_risk(used, limit, refuse_at, bucket_oldest=bucket, live_oldest=live, now=now)
    room["oldestRecordAgeSeconds"] = None if bucket is None else round(max(0.0, now - bucket), 1)
    room["oldestLiveAdAgeSeconds"] = None if live is None else round(max(0.0, now - live), 1)
    return room


async def records_reading(js: JetStreamContext, info: Any, settings: GameadSettings) -> dict[str, Any]:
    """``/v1/stats`` ``records``: the bucket's size and retention (:func:`~gamead_core.stats.document.records_section`)
    and its room (:func:`read_room`, with ``records.refuse_at`` over ``queue.partitions`` work streams)."""
    room = await read_room(js, info, settings.records.refuse_at, settings.queue.partitions)
    return {**records_section(info), **room}


async def room_detail(js: JetStreamContext, settings: GameadSettings) -> str | None:
    """``gamead doctor``'s ``records_filling`` line: None unless the bucket's room refuses new ads now (or its
    stream cannot be read: other findings say why)."""
    try:
        info = await js.stream_info(names.ADS_BUCKET_STREAM)
    except Exception:  # noqa: BLE001 - a missing or unreadable bucket is another finding's
        return None
    room = await read_room(js, info, settings.records.refuse_at, settings.queue.partitions)
    if not room["refusing"]:
        return None
    used, limit = int(info.state.bytes or 0), info.config.max_bytes
    return (f"{used} of {limit} bytes (records.max_bytes) used, over records.refuse_at {room['refuseAt']:g}; the "
            f"oldest ad waiting is {room['oldestLiveAdAgeSeconds']}s old, the oldest record "
            f"{room['oldestRecordAgeSeconds']}s: new ads are refused (503 records_full)")


__all__ = ["at_risk", "over_mark", "read_room", "records_reading", "room_detail"]
