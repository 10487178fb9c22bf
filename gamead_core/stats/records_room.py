"""Whether the full ad-record bucket is about to drop a live ad's record (attack31a F1): the API's intake gate.

The bucket (``records.max_bytes``, ``discard: old``: :mod:`gamead_core.store.retention`) drops its oldest records
when full. Dropping a completed or failed record only shortens how long ``GET /ads/{id}`` (and its Idempotency-Key)
answers, and a bucket full of them is the steady state of a busy service (4 GiB ≈ 25 min at 1,000 ads/s). Dropping
a *live* ad's record is not harmless: its budget (``attempts``) is kept there, and a redelivery recreates the record
from the message with the budget of the first attempt (the worker then keeps a floor: :mod:`gamead_core.worker.
records`). So intake stops before that happens:

* the bucket holds at least ``records.refuse_at`` × ``records.max_bytes`` bytes (0.9: the rest is headroom for the
  workers' updates, which keep writing while intake is refused), and
* the oldest live ad's record (the lowest stream sequence among the records of the ads in the work streams: with
  ``WorkQueue`` retention every message there is an ad not yet acknowledged, queued or retrying) is among the next
  ``1 - refuse_at`` share of the bucket's records it drops: the bucket drops in write order, so position, not time,
  decides (review31 R1: a burst after a slow fill; R1b: one ad whose message is old but whose record was just
  rewritten, e.g. parked while the DLQ is full, is at the new end and stops nothing). Where that record is comes
  from :mod:`gamead_core.stats.records_position` (a sound lower bound of its sequence, from a few direct gets, and
  the exact count of the records stored before it).

Dead ads' records (no TTL, kept for a DLQ replay) are not protected: ``gamead doctor`` names an entry without its
record (``entry_without_record``) and ``--repair`` recreates it.

:func:`at_risk` is the pure rule; :func:`read_room` reads what it needs (a few direct gets: the work streams' first
messages and their records, the bucket by time; a count when the sequences alone cannot tell), only when the bucket is
over the mark. The API reads it in its stats sampler, once a second (:class:`~gamead_core.stats.sampler.
QueueSampler`), never per request.
"""

from __future__ import annotations

from typing import Any

from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.errors import error_text
from gamead_core.stats.document import records_section
from gamead_core.stats.records_position import live_record_floor, records_before


def over_mark(used: int, max_bytes: int | None, refuse_at: float) -> bool:
    """True when ``used`` bytes reach ``refuse_at`` (a share) of ``max_bytes`` (None or ≤ 0: unbounded). Pure."""
    return bool(max_bytes) and max_bytes > 0 and used >= refuse_at * max_bytes  # type: ignore[operator]


def refuse_below(messages: int, refuse_at: float) -> float:
    """How many records (of the bucket's ``messages``) must lie before the oldest live ad's record for intake to go
    on: the ``1 - refuse_at`` share the refusal keeps as headroom. Pure."""
    return (1.0 - refuse_at) * max(0, messages)


def at_risk(used: int, max_bytes: int | None, refuse_at: float, *, messages: int, before_live: int | None) -> bool:
    """Whether new ads must be refused (module doc). ``used``/``max_bytes``: the bucket's bytes and limit;
    ``messages``: the records it holds; ``before_live``: how many of them are stored before (dropped before) the
    oldest live ad's record, None when no ad is live. Pure."""
    if not over_mark(used, max_bytes, refuse_at) or before_live is None:
        return False
    return before_live < refuse_below(messages, refuse_at)


async def read_room(js: JetStreamContext, info: Any, refuse_at: float, partitions: int,
                    slack: float) -> dict[str, Any]:
    """The bucket's room, from its ``stream_info`` (``info``) and, over the mark only, where the oldest live ad's
    record is (``slack``: seconds between a record's create and its message's publish, see
    :mod:`~gamead_core.stats.records_position`): ``{"refuseAt": share, "refusing": bool, "recordsBeforeLive":
    the records stored before the oldest live ad's (None when not read or no ad is live), "refuseBelow": how few of
    them refuse}``. Never raises: a failed read adds ``"roomError"`` and refuses nothing (intake as before the
    gate)."""
    try:
        return await _read_room(js, info, refuse_at, partitions, slack)
    except Exception as exc:  # noqa: BLE001 - said in /v1/stats; the next sample reads again
        return {"refuseAt": refuse_at, "refusing": False, "recordsBeforeLive": None, "refuseBelow": None,
                "roomError": error_text(exc)}


async def _read_room(js: JetStreamContext, info: Any, refuse_at: float, partitions: int,
                     slack: float) -> dict[str, Any]:
    used, limit, held = int(info.state.bytes or 0), info.config.max_bytes, int(info.state.messages or 0)
    room: dict[str, Any] = {"refuseAt": refuse_at, "refusing": False, "recordsBeforeLive": None, "refuseBelow": None}
    if not over_mark(used, limit, refuse_at):
        return room
    below = refuse_below(held, refuse_at)
    floor = await live_record_floor(js, partitions, slack)
    before: int | None = None
    if floor is not None:
        first = int(info.state.first_seq or 0)
        # sequences overstate the records between (rewritten records leave holes): when even they are too few,
        # no count is needed
        before = max(0, floor - first) if floor - first < below else await records_before(js, info, floor)
    room["refusing"] = at_risk(used, limit, refuse_at, messages=held, before_live=before)
    room["recordsBeforeLive"], room["refuseBelow"] = before, round(below)
    return room


def _slack(settings: GameadSettings) -> float:
    """Seconds a record's create and its message's publish can lie apart: each waits ``api.publish_timeout``."""
    return 2.0 * settings.api.publish_timeout


async def records_reading(js: JetStreamContext, info: Any, settings: GameadSettings) -> dict[str, Any]:
    """``/v1/stats`` ``records``: the bucket's size and retention (:func:`~gamead_core.stats.document.records_section`)
    and its room (:func:`read_room`, with ``records.refuse_at`` over ``queue.partitions`` work streams)."""
    return {**records_section(info), **await read_room(js, info, settings.records.refuse_at,
                                                         settings.queue.partitions, _slack(settings))}


async def room_detail(js: JetStreamContext, settings: GameadSettings) -> str | None:
    """``gamead doctor``'s ``records_filling`` line: None unless the bucket's room refuses new ads now (or its
    stream cannot be read: other findings say why)."""
    try:
        info = await js.stream_info(names.ADS_BUCKET_STREAM)
    except Exception:  # noqa: BLE001 - a missing or unreadable bucket is another finding's
        return None
    room = await read_room(js, info, settings.records.refuse_at, settings.queue.partitions, _slack(settings))
    if not room["refusing"]:
        return None
    used, limit = int(info.state.bytes or 0), info.config.max_bytes
    return (f"{used} of {limit} bytes (records.max_bytes) used, over records.refuse_at {room['refuseAt']:g}; "
            f"{room['recordsBeforeLive']} of its {int(info.state.messages or 0)} records are dropped before a live "
            f"ad's (fewer than {room['refuseBelow']}): new ads are refused (503 records_full)")


__all__ = ["at_risk", "over_mark", "read_room", "refuse_below", "records_reading", "room_detail"]
