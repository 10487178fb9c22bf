"""The dead-letter queue: stream ``GAMEAD_DLQ``, one entry per dead ad, limits retention.

Entries are copied here *before* the work message is acknowledged or deleted (``term()`` would delete at
once), with a deterministic message id so a retried copy is dropped as a duplicate.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from gamead_core import names
from gamead_core.config import DlqSettings, QueueSettings
from gamead_core.errors import NotFound
from gamead_core.models import DlqEntry
from gamead_core.queue.connection import delete_if_present, translate
from gamead_core.queue.scan import read_stream


def dlq_stream_config(ds: DlqSettings, qs: QueueSettings) -> StreamConfig:
    return StreamConfig(
        name=names.DLQ_STREAM,
        description="gamead dead-letter queue: ads that failed for good (one entry per ad)",
        subjects=[names.DLQ_SUBJECT_WILDCARD],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=ds.max_age,
        max_msgs=ds.max_msgs,
        max_msgs_per_subject=1,
        # A full DLQ refuses new entries rather than silently dropping old ones: the worker then keeps the
        # ad in the work stream and retries, so nothing is lost.
        discard=DiscardPolicy.NEW,
        duplicate_window=qs.duplicate_window,
        num_replicas=qs.replicas,
    )


def advisory_stream_config(qs: QueueSettings) -> StreamConfig:
    return StreamConfig(
        name=names.ADVISORY_STREAM,
        description="captured max-deliveries advisories of the gamead level consumers",
        subjects=[names.ADVISORY_SUBJECT],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        max_age=7 * 86400,
        duplicate_window=qs.duplicate_window,
        num_replicas=qs.replicas,
    )


@dataclass(frozen=True)
class DlqFilter:
    """Which entries an operator means. Every field narrows; none means everything."""

    ids: frozenset[str] | None = None
    error_class: str | None = None
    message: str | None = None  #: regex searched in the error message
    priority: int | None = None
    since: datetime | None = None  #: dead at or after
    until: datetime | None = None  #: dead before
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.message is not None:
            object.__setattr__(self, "_pattern", re.compile(self.message))

    def matches(self, entry: DlqEntry) -> bool:
        if self.ids is not None and entry.ad_id not in self.ids:
            return False
        if self.error_class is not None and entry.error_class != self.error_class:
            return False
        if self._pattern is not None and not self._pattern.search(entry.error_message):
            return False
        if self.priority is not None and entry.priority != self.priority:
            return False
        if self.since is not None and entry.dead_at < self.since:
            return False
        return not (self.until is not None and entry.dead_at >= self.until)


@dataclass(frozen=True)
class Page:
    items: list[DlqEntry]
    next_cursor: int | None  #: pass as ``after`` to read on; None at the end
    total: int  #: entries in the DLQ, all filters aside


class DeadLetters:
    """Adds, reads, finds and deletes DLQ entries."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    async def add(self, entry: DlqEntry, *, dedupe: bool = True) -> tuple[int, bool]:
        """Store ``entry``; returns (sequence, duplicate). Raises QueueFull/QueueUnavailable.

        With ``dedupe`` a repeat of the same dead-lettering (a worker retrying its copy) is dropped.
        """
        headers = {names.HDR_AD_ID: entry.ad_id}
        if dedupe:
            headers[names.HDR_MSG_ID] = (
                f"dead:{entry.ad_id}:{entry.source_seq}:{entry.attempts}:{entry.dead_at.timestamp():.6f}"
            )
        try:
            ack = await self._js.publish(
                names.dlq_subject(entry.ad_id),
                entry.model_dump_json(exclude_none=True, exclude={"seq"}).encode(),
                headers=headers,
            )
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            raise translate(exc) from exc
        return ack.seq, bool(ack.duplicate)

    async def get(self, ad_id: str) -> DlqEntry:
        try:
            raw = await self._js.get_last_msg(names.DLQ_STREAM, names.dlq_subject(ad_id))
        except nats.js.errors.NotFoundError as exc:
            raise NotFound(f"no dead-lettered ad with id {ad_id!r}") from exc
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            raise translate(exc) from exc
        entry = DlqEntry.model_validate_json(raw.data or b"{}")
        return entry.model_copy(update={"seq": raw.seq})

    async def delete(self, entry: DlqEntry) -> bool:
        """Remove one entry (by its sequence). False if it was already gone."""
        if entry.seq is None:
            entry = await self.get(entry.ad_id)
        return await delete_if_present(self._js, names.DLQ_STREAM, entry.seq)  # type: ignore[arg-type]

    async def size(self) -> int:
        try:
            return int((await self._js.stream_info(names.DLQ_STREAM)).state.messages)
        except nats.js.errors.NotFoundError:
            return 0
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            raise translate(exc) from exc

    async def entries(self, flt: DlqFilter | None = None, *, after: int = 0):  # noqa: ANN201 - async generator
        """Every matching entry in DLQ order (oldest first), from sequence ``after`` + 1."""
        flt = flt or DlqFilter()
        async for msg in read_stream(self._js, names.DLQ_STREAM, names.DLQ_SUBJECT_WILDCARD, start_seq=after + 1):
            if not msg.data:
                continue
            entry = DlqEntry.model_validate_json(msg.data).model_copy(
                update={"seq": msg.metadata.sequence.stream}
            )
            if flt.matches(entry):
                yield entry

    async def page(self, flt: DlqFilter | None = None, *, limit: int = 50, after: int = 0,
                   newest_first: bool = False, scan_limit: int = 100_000) -> Page:
        """One page of matching entries. Oldest first with a cursor, or the newest ``limit`` entries."""
        total = await self.size()
        items: list[DlqEntry] = []
        next_cursor: int | None = None
        scanned = 0
        async for entry in self.entries(flt, after=after):
            scanned += 1
            items.append(entry)
            if not newest_first and len(items) > limit:
                items.pop()
                next_cursor = items[-1].seq
                break
            if scanned >= scan_limit:
                break
        if newest_first:
            items = list(reversed(items[-limit:]))
            next_cursor = None
        return Page(items, next_cursor, total)
