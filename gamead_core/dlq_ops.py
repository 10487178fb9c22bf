"""Operator actions on the DLQ: replay, purge, import. Safe to repeat and to interrupt.

Replay of one entry, in this order:
1. the ad's record moves ``dead → queued`` (compare-and-set) and remembers the entry (``replayOf``);
2. the ad is published to its original level with the message id ``replay:<ad>:<entry seq>``;
3. the entry is deleted from the DLQ.
A crash after 1 or 2 leaves the entry in the DLQ; replaying it again resumes (the record already says it is
this entry's replay) and JetStream drops the repeated publish as a duplicate. So a crash mid-replay neither
loses nor duplicates the ad, and replaying the same entry twice enqueues it once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from nats.js import JetStreamContext

from gamead_core.errors import Conflict, NotFound
from gamead_core.models import AdRecord, AdStatus, DlqEntry
from gamead_core.queue.dlq import DeadLetters, DlqFilter
from gamead_core.queue.publish import publish_ad
from gamead_core.store.ads import AdStore, encode

log = logging.getLogger(__name__)

#: Replayed ads that must have finished before a failure rate is judged.
MIN_SAMPLE = 5


@dataclass
class ReplayReport:
    matched: int = 0
    replayed: int = 0
    skipped: int = 0
    completed: int = 0  #: replayed ads seen completed while the replay ran
    failed: int = 0  #: replayed ads seen dead again while the replay ran
    stopped: bool = False
    reason: str | None = None
    dry_run: bool = False

    def as_wire(self) -> dict[str, object]:
        out = asdict(self)
        out["dryRun"] = out.pop("dry_run")
        return out


def failure_rate_exceeded(completed: int, failed: int, threshold: float | None) -> bool:
    """Pure: stop a bulk replay once enough replayed ads finished and too many of them failed again."""
    if threshold is None:
        return False
    done = completed + failed
    return done >= MIN_SAMPLE and failed / done > threshold


class DlqOps:
    def __init__(self, js: JetStreamContext, store: AdStore, dlq: DeadLetters, *, publish_timeout: float) -> None:
        self._js = js
        self._store = store
        self._dlq = dlq
        self._timeout = publish_timeout

    async def select(self, flt: DlqFilter, limit: int) -> list[DlqEntry]:
        out: list[DlqEntry] = []
        async for entry in self._dlq.entries(flt):
            out.append(entry)
            if len(out) >= limit:
                break
        return out

    async def _record_for(self, entry: DlqEntry) -> AdRecord:
        """The ad's record; recreated (as dead) from the entry when missing, e.g. after an import."""
        try:
            return (await self._store.get(entry.ad_id)).record
        except NotFound:
            record = AdRecord(
                id=entry.ad_id, status=AdStatus.DEAD, priority=entry.priority, submitted_at=entry.submitted_at,
                ad=entry.ad, attempts=entry.attempts, worker_id=entry.worker_id,
            )
            try:
                await self._store.create(record)
            except Conflict:
                return (await self._store.get(entry.ad_id)).record
            return record

    async def replay_one(self, entry: DlqEntry) -> bool:
        """Re-enqueue one entry. True if this call enqueued it, False if there was nothing (left) to do."""
        assert entry.seq is not None
        await self._record_for(entry)

        def requeue(rec: AdRecord) -> AdRecord | None:
            if rec.status != AdStatus.DEAD:
                return None
            return rec.model_copy(update={
                "status": AdStatus.QUEUED, "attempts": 0, "replay_of": entry.seq, "retry_at": None,
                "started_at": None, "completed_at": None, "worker_id": None,
            })

        moved = await self._store.mutate(entry.ad_id, requeue)
        record = moved.record if moved else (await self._store.get(entry.ad_id)).record
        enqueued = False
        if record.replay_of == entry.seq and record.status == AdStatus.QUEUED:
            duplicate = await publish_ad(
                self._js, ad_id=entry.ad_id, level=entry.priority, payload=encode(record), timeout=self._timeout,
                msg_id=f"replay:{entry.ad_id}:{entry.seq}",
            )
            enqueued = not duplicate  # a repeat (concurrent or resumed replay) was dropped by JetStream
        await self._dlq.delete(entry)
        return enqueued

    async def replay(
        self,
        entries: list[DlqEntry],
        *,
        dry_run: bool = False,
        rate: float | None = None,
        stop_on_failure_rate: float | None = None,
        progress: Callable[[ReplayReport], Awaitable[None]] | None = None,
    ) -> ReplayReport:
        report = ReplayReport(matched=len(entries), dry_run=dry_run)
        if dry_run:
            return report
        interval = 1.0 / rate if rate else 0.0
        started = time.monotonic()
        watched: dict[str, int] = {}  # ad id → the entry seq it was replayed from
        last_check = started
        for i, entry in enumerate(entries):
            if interval:
                await asyncio.sleep(max(0.0, started + i * interval - time.monotonic()))
            if await self.replay_one(entry):
                report.replayed += 1
                watched[entry.ad_id] = entry.seq  # type: ignore[assignment]
            else:
                report.skipped += 1
            if stop_on_failure_rate is not None and time.monotonic() - last_check >= 0.5:
                last_check = time.monotonic()
                await self._observe(watched, report)
                if failure_rate_exceeded(report.completed, report.failed, stop_on_failure_rate):
                    report.stopped = True
                    report.reason = (
                        f"{report.failed} of {report.completed + report.failed} replayed ads failed again "
                        f"(over {stop_on_failure_rate:.0%}); {len(entries) - i - 1} left in the DLQ"
                    )
                    break
            if progress is not None:
                await progress(report)
        return report

    async def _observe(self, watched: dict[str, int], report: ReplayReport) -> None:
        """Count replayed ads that finished, forgetting them once counted."""
        for ad_id, seq in list(watched.items())[-200:]:
            try:
                record = (await self._store.get(ad_id)).record
            except NotFound:
                continue
            if record.status == AdStatus.COMPLETED:
                report.completed += 1
                del watched[ad_id]
            elif record.status == AdStatus.DEAD and record.replay_of == seq:
                report.failed += 1
                del watched[ad_id]

    async def purge(self, entries: list[DlqEntry]) -> int:
        purged = 0
        for entry in entries:
            purged += await self._dlq.delete(entry)
        return purged

    async def import_entries(self, entries: list[DlqEntry]) -> tuple[int, int]:
        """Put exported entries (back) into the DLQ; returns (imported, duplicates)."""
        imported = duplicates = 0
        for entry in entries:
            entry = entry.model_copy(update={"seq": None})
            try:
                present = await self._dlq.get(entry.ad_id)
            except NotFound:
                present = None
            if present is not None and present.model_copy(update={"seq": None}) == entry:
                duplicates += 1
                continue
            await self._dlq.add(entry, dedupe=False)  # one entry per ad: an older one is replaced
            imported += 1
            try:
                await self._store.get(entry.ad_id)
            except NotFound:
                await self._record_for(entry.model_copy(update={"seq": 0}))
        return imported, duplicates


