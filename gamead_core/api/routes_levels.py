"""``GET /v1/levels/{level}/oldest``: a priority level's oldest unacknowledged ads (the dashboard's drill-down).

The work stream has work-queue retention, so every message left on a level's subject is unacknowledged: ack
pending (the level's consumer delivered it: sequence ≤ its ``delivered`` stream sequence) or pending (never
delivered) — JetStream's terms, as in the README's Glossary. Walking
the subject from the consumer's ack floor with ``get_msg(next=True)`` gives them oldest first; each one's record
(attempts, worker, status, title) comes from the ad-record bucket. Bounded: at most ``limit`` (≤ 100) messages
per partition and ``limit`` record reads, whatever the backlog (``GET /ads`` instead scans the newest records
written). With ``queue.partitions`` > 1 every partition's stream is walked and the lists merged: the ack pending
ads first, then the pending ones, each oldest first; the counts are summed. The partitions walked are the queue's
(:func:`~gamead_core.queue.partition_watch.queue_partitions`), also on a node left on an old setting.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Annotated, Any

import nats.js.errors
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from gamead_core import clock, names
from gamead_core.api.contract import error_responses
from gamead_core.api.responses import json_response
from gamead_core.errors import NotFound, QueueUnavailable
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.depth import LevelDepth, level_depth
from gamead_core.queue.partition_watch import queue_partitions
from gamead_core.queue.partitions import merge_depths

router = APIRouter(prefix="/v1/levels", tags=["operations"])

MAX_OLDEST = 100  #: most ads one answer lists


class OldestAd(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None
    state: str
    seq: int
    stream: str | None = None
    queuedAt: str | None  # noqa: N815 - wire name
    ageSeconds: float | None  # noqa: N815
    status: str | None = None
    attempts: int | None = None
    workerId: str | None = None  # noqa: N815
    title: str | None = None


class OldestPage(BaseModel):
    level: int
    pending: int
    ackPending: int  # noqa: N815
    count: int
    items: list[OldestAd]


async def _walk(js: Any, level: int, partition: int, depth: LevelDepth, limit: int, now: float) -> list[dict[str, Any]]:
    """The oldest ``limit`` messages of ``level`` in ``partition``'s stream, from its consumer's ack floor."""
    stream, subject = names.work_stream(partition), names.level_subject(level, partition)
    items: list[dict[str, Any]] = []
    seq = depth.ack_floor
    while len(items) < limit:
        try:
            msg = await js.get_msg(stream, seq=seq + 1, subject=subject, next=True)
        except nats.js.errors.NotFoundError:
            break
        seq = int(msg.seq or seq + 1)
        queued = msg.time
        items.append({
            "id": (msg.headers or {}).get(names.HDR_AD_ID),
            "state": "ackPending" if seq <= depth.delivered_seq else "pending",
            "seq": seq,
            "stream": stream,
            "queuedAt": _iso(queued),
            "ageSeconds": None if queued is None else round(max(0.0, now - queued.timestamp()), 3),
        })
    return items


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@router.get("/{level}/oldest", summary="A level's oldest unacknowledged ads, oldest first: ack pending, then pending",
            response_model=OldestPage, responses=error_responses(422, 503))
async def oldest(
    request: Request,
    level: Annotated[int, Path(ge=1, le=5, description="Priority level, 1 (most urgent) to 5.")],
    limit: Annotated[int, Query(ge=1, le=MAX_OLDEST, description="Most ads listed.")] = 20,
) -> Response:
    """`{level, pending, ackPending, count, items}`: `pending` and `ackPending` are the level consumer's counts
    now (`num_pending`, `num_ack_pending`); each item: `id`, `state` (`ackPending` or `pending`), `seq` (work-stream sequence), `queuedAt` and
    `ageSeconds` (since the message was put on the stream), `stream` (the work stream it waits in: one per
    partition, `queue.partitions`), and from its record `status`, `attempts`, `workerId`, `title` (absent when
    the record cannot be read). 503 `queue_unavailable` while NATS is away."""
    link = request.app.state.link
    js = link.js
    if js is None:
        raise QueueUnavailable("the queue is unavailable; retry shortly")
    now = clock.now()
    items: list[dict[str, Any]] = []
    depths = []
    partitions = await queue_partitions(js, request.app.state.settings.queue.partitions)  # the queue's, not ours
    with nats_boundary():
        for partition in range(partitions):
            depth = await level_depth(js, level, now, partition)
            depths.append(depth)
            items.extend(await _walk(js, level, partition, depth, limit, now))
    depth = merge_depths(level, depths)
    items.sort(key=lambda i: (i["state"] != "ackPending", -(i["ageSeconds"] or 0.0), i["stream"], i["seq"]))
    del items[limit:]
    store = link.store
    records = await asyncio.gather(*(store.get(i["id"]) for i in items if i["id"]), return_exceptions=True)
    by_id = {}
    for rec in records:
        if isinstance(rec, NotFound):
            continue
        if isinstance(rec, BaseException):
            raise rec
        by_id[rec.record.id] = rec.record
    for item in items:
        record = by_id.get(item["id"])
        if record is not None:
            item.update(status=record.status.value, attempts=record.attempts, workerId=record.worker_id,
                        title=record.ad.title)
    body = {"level": level, "pending": depth.pending, "ackPending": depth.ack_pending, "count": len(items),
            "items": items}
    return json_response(body, no_store=True)
