"""The dead-letter queue: stream ``GAMEAD_DLQ``, one entry per dead ad (subject ``gamead.dlq.<ad id>``,
``max_msgs_per_subject=1``: a newer entry for an ad replaces the older one), limits retention.

Entries are copied here *before* the work message is acknowledged or deleted (``term()`` would delete at once), with a
deterministic message id so a retried copy is dropped as a duplicate.

An entry's stream sequence is its identity: operator jobs act on an entry only while it is still the ad's *current*
entry (:meth:`DeadLetters.current`), and delete it by that sequence, so an entry that was replaced (the ad died again,
or an import wrote a newer one) is never acted on by a job that selected the older one.

Reading is bounded and never blocks the event loop: filters use RE2 (linear time, no backtracking: a pattern such as
``(.*)*X`` costs the same as any other; a search that may be long runs in a thread), scans yield to the loop every
:data:`YIELD_EVERY` entries and stop at a :class:`ScanBudget` (entries and seconds), saying so in their answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from pydantic import ValidationError

from gamead_core import names
from gamead_core.config import DlqSettings, QueueSettings
from gamead_core.dlq_pattern import MAX_PATTERN, compile_pattern  # noqa: F401 - re-exported
from gamead_core.errors import Conflict, NotFound
from gamead_core.full_stores import dlq_boundary
from gamead_core.ids import is_ad_id
from gamead_core.models import STORED, DlqEntry
from gamead_core.queue.acks import Ack, publish_acked
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.delete_msg import delete_if_present
from gamead_core.queue.dlq_filter import DlqFilter, ScanBudget
from gamead_core.queue.scan import read_stream
from gamead_core.store.cas import retry_busy

log = logging.getLogger(__name__)

#: A scan hands the event loop back after this many entries.
YIELD_EVERY = 100
#: ... or as soon as this many seconds of the loop were spent since the last yield (a ``message`` search that may
#: take more than ~15 ms runs in a thread instead: :meth:`DlqFilter.off_loop`)
YIELD_SECONDS = 0.02
#: A page names at most this many unreadable entries (:attr:`Page.unreadable`).
UNREADABLE_KEPT = 100
#: JetStream's error code for a publish refused by ``Nats-Expected-Last-Subject-Sequence``.
WRONG_LAST_SEQUENCE = 10071
#: seconds an entry's publish awaits its ack when the JetStream context names no timeout (nats-py's default)
DEFAULT_TIMEOUT = 5.0


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


@dataclass(frozen=True)
class Current:
    """An ad's current DLQ entry: its sequence, the entry (None if it cannot be decoded) and the job that
    wrote it (an import), if any."""

    seq: int
    entry: DlqEntry | None
    job_id: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[DlqEntry]
    next_cursor: int | None  #: pass as ``after`` to read on; None at the end
    total: int | None  #: entries matching the filter from ``after`` on, among those read; None: not counted
    scanned: int = 0  #: entries this page read
    complete: bool = True  #: False if the scan budget stopped it before the end of the DLQ
    in_dlq: int = 0  #: entries in the whole DLQ, all filters aside
    fence: int = 0  #: the highest sequence the page may hold (``up_to``, or the DLQ's last when the read began)
    #: (sequence, ad id) of the entries this page read that cannot be read as entries (not in ``items``, counted in
    #: ``in_dlq``): a message written by something other than gamead (attack31b F3), at most :data:`UNREADABLE_KEPT`
    unreadable: list[tuple[int, str]] = field(default_factory=list)
    max_msgs: int | None = None  #: the DLQ's ``max_msgs`` (``dlq.max_msgs`` as the stream has it); None: unlimited
    offset: int | None = None  #: matching entries before the page (up to ``after``); None: not counted

    @property
    def full(self) -> bool:
        """The DLQ is at ``max_msgs``: it refuses every new entry (:mod:`gamead_core.stats.dlq_room`)."""
        return is_full(self.in_dlq, self.max_msgs)


def is_full(size: int | None, max_msgs: int | None) -> bool:
    """True when ``size`` entries reach ``max_msgs`` (None or ≤ 0: unlimited; None size: unknown). Pure."""
    return size is not None and bool(max_msgs) and max_msgs > 0 and size >= max_msgs  # type: ignore[operator]


def max_msgs_of(info: Any) -> int | None:
    """The ``max_msgs`` of a stream's info (``dlq.max_msgs`` as the DLQ has it); None: unlimited, or no stream
    (``info`` None). Pure."""
    limit = int(info.config.max_msgs or -1) if info is not None else -1
    return limit if limit > 0 else None


def _decode(data: bytes | None, seq: int) -> DlqEntry | None:
    if not data:
        return None
    try:
        return DlqEntry.model_validate_json(data, context=STORED).model_copy(update={"seq": seq})
    except ValidationError as exc:
        log.warning("DLQ entry %d cannot be read; skipped: %s", seq, exc.errors()[0].get("msg"),
                    extra={"dlq_seq": seq})
        return None


def _subject(ad_id: str) -> str:
    """The DLQ subject of ``ad_id``; refuses anything that is not an ad id (it would be a wildcard, a
    second token or an over-long control line on the wire)."""
    if not is_ad_id(ad_id):
        raise ValueError(f"not an ad id: {ad_id[:40]!r}")
    return names.dlq_subject(ad_id)


class DeadLetters:
    """Adds, reads, finds and deletes DLQ entries. NATS errors leave as gamead errors."""

    def __init__(self, js: JetStreamContext, *, reads: JetStreamContext | None = None) -> None:
        self._js = js
        #: what :meth:`entries` reads the stream through: ``reads`` (the API's reads connection,
        #: gamead_core.api.read_conn), else ``js``
        self._reads = reads or js

    async def add(self, entry: DlqEntry, *, dedupe: bool = True, expected_last_seq: int | None = None,
                  job_id: str | None = None) -> tuple[int, bool]:
        """Store ``entry``; returns (sequence, duplicate). Raises :class:`~gamead_core.full_stores.DlqFull` (a
        :class:`QueueFull`: the DLQ is at ``dlq.max_msgs``), QueueUnavailable.

        With ``dedupe`` a repeat of the same dead-lettering (a worker retrying its copy) is dropped. With
        ``expected_last_seq`` (0 = the ad has no entry) the write happens only if the ad's current entry is
        still that one, else :class:`Conflict` (JetStream's ``Nats-Expected-Last-Subject-Sequence``).
        ``job_id`` marks an entry written by an operator job (an import).
        """
        subject = _subject(entry.ad_id)
        headers = {names.HDR_AD_ID: entry.ad_id}
        if dedupe:
            headers[names.HDR_MSG_ID] = (
                f"dead:{entry.ad_id}:{entry.source_seq}:{entry.attempts}:{entry.dead_at.timestamp():.6f}"
            )
        if expected_last_seq is not None:
            headers[names.HDR_EXPECTED_LAST_SUBJECT_SEQ] = str(expected_last_seq)
        if job_id is not None:
            headers[names.HDR_JOB_ID] = job_id
        payload = entry.model_dump_json(exclude_none=True, exclude={"seq"}).encode()
        with dlq_boundary():
            try:
                # through the connection's reply subscription: a "no responders" (a cluster re-forming) is sent
                # again within the context's timeout (gamead_core.queue.acks, attack40b F3); busy: again
                ack = await retry_busy(lambda: self._publish(subject, payload, headers))
            except nats.js.errors.APIError as exc:
                if exc.err_code == WRONG_LAST_SEQUENCE:
                    raise Conflict(f"the DLQ entry of ad {entry.ad_id} changed meanwhile") from exc
                raise
        return ack.seq, bool(ack.duplicate)

    async def _publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> Ack:
        """One publish of an entry, its ack awaited ``js``'s own timeout (nats-py's ``JetStreamContext._timeout``,
        what ``js.publish`` waited); raises what ``js.publish`` raises for its answer (:func:`publish_acked`)."""
        timeout = float(getattr(self._js, "_timeout", DEFAULT_TIMEOUT))
        return await (await publish_acked(self._js, subject, payload, headers=headers, timeout=timeout))

    async def current(self, ad_id: str) -> Current | None:
        """The ad's current entry (the last message on its subject), or None if it has none (or ``ad_id``
        is not an ad id)."""
        if not is_ad_id(ad_id):
            return None
        with nats_boundary():
            try:
                raw = await self._js.get_last_msg(names.DLQ_STREAM, _subject(ad_id))
            except nats.js.errors.NotFoundError:
                return None
        job = (raw.headers or {}).get(names.HDR_JOB_ID)
        return Current(raw.seq, _decode(raw.data, raw.seq), job)

    async def get(self, ad_id: str) -> DlqEntry:
        """The ad's current entry; raises :class:`NotFound` (also for a string that is not an ad id)."""
        found = await self.current(ad_id)
        if found is None or found.entry is None:
            raise NotFound(f"no dead-lettered ad with id {ad_id[:40]!r}")
        return found.entry

    async def delete(self, entry: DlqEntry) -> bool:
        """Remove one entry (by its sequence). False if it was already gone."""
        if entry.seq is None:
            entry = await self.get(entry.ad_id)
        return await self.delete_seq(entry.seq)  # type: ignore[arg-type]

    async def delete_seq(self, seq: int) -> bool:
        """Remove the entry at stream sequence ``seq``: exactly that entry, never a newer one of the same ad.
        False if it was already gone."""
        return await delete_if_present(self._js, names.DLQ_STREAM, seq)

    async def _state(self) -> Any:
        info = await self._info()
        return info.state if info is not None else None

    async def _info(self) -> Any:
        """The DLQ stream's info (state and config); None while it does not exist (created on first use)."""
        with nats_boundary():
            try:
                return await self._js.stream_info(names.DLQ_STREAM)
            except nats.js.errors.NotFoundError:
                return None

    async def size(self) -> int:
        state = await self._state()
        return int(state.messages) if state is not None else 0

    async def last_seq(self) -> int:
        """The DLQ's last sequence: a job acts only on entries at or below it (its fence)."""
        state = await self._state()
        return int(state.last_seq) if state is not None else 0

    async def entries(
        self, flt: DlqFilter | None = None, *, after: int = 0, up_to: int | None = None,
        budget: ScanBudget | None = None, unreadable: list[tuple[int, str]] | None = None,
    ) -> AsyncIterator[DlqEntry]:
        """Every matching, readable entry in DLQ order (oldest first), from sequence ``after`` + 1 up to
        ``up_to``, within ``budget``. Yields to the event loop every :data:`YIELD_EVERY` entries read, or
        :data:`YIELD_SECONDS` of work (filters matched), whichever comes first. Each entry that cannot be read is
        skipped and, given ``unreadable``, added to it as (sequence, the ad id of its subject)."""
        flt = flt or DlqFilter()
        read = 0
        yielded = time.monotonic()
        async for msg in read_stream(self._reads, names.DLQ_STREAM, names.DLQ_SUBJECT_WILDCARD, start_seq=after + 1):
            seq = msg.metadata.sequence.stream
            if up_to is not None and seq > up_to:
                return
            read += 1
            if budget is not None:
                budget.last_seq = seq
            if read % YIELD_EVERY == 0 or time.monotonic() - yielded >= YIELD_SECONDS:
                await asyncio.sleep(0)
                yielded = time.monotonic()
            entry = _decode(msg.data, seq)
            if entry is None and unreadable is not None and len(unreadable) < UNREADABLE_KEPT:
                unreadable.append((seq, msg.subject.removeprefix(f"{names.DLQ_SUBJECT_PREFIX}.")))
            if entry is not None and (await asyncio.to_thread(flt.matches, entry) if flt.off_loop(entry)
                                      else flt.matches(entry)):
                yield entry
            if budget is not None and not budget.spend():
                return

    async def page(self, flt: DlqFilter | None = None, *, limit: int = 50, after: int = 0, up_to: int | None = None,
                   newest_first: bool = False, budget: ScanBudget | None = None, count: bool = True) -> Page:
        """One page of matching entries: oldest first from ``after`` with a cursor, or the newest ``limit``;
        ``total`` counts every matching entry (ops13 finding 6: "2 shown of 27" said 27 for the whole DLQ), the
        same on every page (attack25d #8: a later page counted those after its cursor only), so a filtered page
        reads on past its last item, and a later one the entries up to its cursor too, within a budget like
        ``budget`` of their own (not in ``scanned``; ``total`` None when it ran out); without a filter the total
        is the DLQ's size (nothing to read for it). ``count=False``: a reader
        that needs no total (``dlq export`` past its first page) reads one entry past the page and no more,
        ``total`` None (counting on every page made an export of N entries read ~N²/500 of them).

        ``budget`` bounds the read; a read it cut short has ``complete=False`` (``total`` then counts the
        entries read) and (oldest first) a ``next_cursor`` at the last item, or the last entry read, so the
        next page goes on from there. Newest first reads the most recent ``budget.entries`` entries only.
        ``up_to`` (the fence, as a job's): only entries at or below that sequence, by default the DLQ's last one
        when the read began (``Page.fence``); a listing paged with its first page's fence never shows an ad twice
        (an entry replayed and dead again between two pages is past it: attack27 F5).
        """
        budget = budget or ScanBudget()
        info = await self._info()
        state = info.state if info is not None else None
        in_dlq = int(state.messages) if state is not None else 0
        fence = up_to if up_to is not None else int(state.last_seq) if state is not None else 0
        flt = flt or DlqFilter()
        # every entry matches (total is the DLQ's size), or no total wanted: nothing to count past the page
        counted = not count or not flt.active
        # matching entries up to the cursor (a budget of their own): the total is the filter's, whatever the page
        ahead = ScanBudget(entries=None if budget.entries is None else budget.entries + 1,  # exactly it: not cut
                           seconds=budget.seconds)
        before = 0
        if count and flt.active and after > 0 and not newest_first:
            before = sum([1 async for _ in self.entries(flt, up_to=after, budget=ahead)])
        items: list[DlqEntry] = []
        next_cursor: int | None = None
        if newest_first and budget.entries is not None and state is not None:
            after = max(after, fence - budget.entries)
        complete = True
        total = 0
        unreadable: list[tuple[int, str]] = []
        async for entry in self.entries(flt, after=after, up_to=fence, budget=budget, unreadable=unreadable):
            total += 1
            if newest_first or len(items) < limit:
                items.append(entry)
            elif next_cursor is None:
                next_cursor = items[-1].seq  # one more than the page: there is more
                if counted:
                    break
        if budget.exhausted:
            complete = False
            if not newest_first and next_cursor is None:
                next_cursor = budget.last_seq
        if newest_first:
            items = list(reversed(items[-limit:]))
            next_cursor = None
            complete = complete and (state is None or after < int(state.first_seq))
        # None when the count before the cursor stopped at its budget (a DLQ past scan_limit): not a wrong figure
        shown_total = None if not count or ahead.exhausted else in_dlq if counted else before + total
        # the rows before the page (``before``, 0 on a first page): known there, or when a filter's count read up to
        # the cursor whole
        known = count and not newest_first and not ahead.exhausted and (after == 0 or flt.active)
        offset = before if known else None
        return Page(items, next_cursor, shown_total, budget.scanned, complete, in_dlq, fence, unreadable,
                    max_msgs_of(info), offset)
