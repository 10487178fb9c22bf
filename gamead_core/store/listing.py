"""The newest ad records, filtered, from the tail of the records' bucket stream (``GET /ads``).

The bucket keeps one revision per key, so every message in its stream is a current record: reading the tail of
the stream in order is a scan of the most recently written ads. A reviewer's 40 filtered lists at once took an
API from 87 to 433 MB RSS: memory is now ``limit`` records whatever ``scan_limit`` is (a heap of the newest), a
record whose bytes cannot hold the wanted status (its value as a JSON string) is skipped undecoded, and the loop
yields every :data:`SCAN_YIELD_EVERY` messages so a long scan does not hold up other requests. How many scans
run at once is the API's (:mod:`gamead_core.api.scan_gate`).
"""

from __future__ import annotations

import asyncio
import heapq
from datetime import datetime

from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.models import AdRecord, AdStatus
from gamead_core.queue.scan import read_stream

SCAN_YIELD_EVERY = 128  #: a record scan lets other tasks run after this many messages


async def newest_records(
    js: JetStreamContext,
    *,
    status: AdStatus | None = None,
    priority: int | None = None,
    limit: int = 50,
    scan_limit: int = 10_000,
    timeout: float = 2.0,
) -> list[AdRecord]:
    """Newest records (by submission time, newest first) matching ``status`` and ``priority``, at most
    ``limit``, among the last ``scan_limit`` written. Stops early after ``timeout`` seconds without a message.
    Raises the gamead error of a failed read (``read_stream``'s NATS boundary)."""
    wanted = f'"{status.value}"'.encode() if status is not None else None
    newest: list[tuple[datetime, int, AdRecord]] = []  # a min-heap of the ``limit`` newest
    seen = 0
    async for msg in read_stream(js, names.ADS_BUCKET_STREAM, names.kv_all(names.ADS_BUCKET), tail=scan_limit,
                                 timeout=timeout):
        seen += 1
        if seen % SCAN_YIELD_EVERY == 0:
            await asyncio.sleep(0)
        data = msg.data
        if not data or (msg.headers and msg.headers.get(names.HDR_KV_OPERATION)):
            continue  # a delete or purge marker
        if wanted is not None and wanted not in data:
            continue
        record = AdRecord.model_validate_json(data)  # gamead_core.store.ads.decode
        if (status is None or record.status == status) and (priority is None or record.priority == priority):
            entry = (record.submitted_at, seen, record)
            if len(newest) < limit:
                heapq.heappush(newest, entry)
            else:
                heapq.heappushpop(newest, entry)
    return [record for _, _, record in sorted(newest, reverse=True)]
