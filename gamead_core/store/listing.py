"""The newest ad records, filtered, a page at a time, from the tail of the records' bucket stream (``GET /ads``).

The bucket keeps one revision per key, so every message in its stream is a current record (or the marker of a
deleted one): reading the newest ``scan_limit`` messages in order is a scan of the ``scan_limit`` most recently
written ads. Its sequences are sparse (each rewrite frees the older one), so the window is found by count, not
by sequence (:func:`gamead_core.store.window.newest_window`). A page says how many records it read
(``scanned``) and whether that was every record of the bucket (``complete``). A reviewer's 40 filtered lists
at once took an API from 87 to 433 MB RSS: memory is now ``limit`` records whatever ``scan_limit`` is (a heap
of the newest), and the loop yields every :data:`SCAN_YIELD_EVERY` messages so a long scan does not hold up other
requests. A record is read by its head (id, status, priority, submittedAt: :mod:`gamead_core.store.record_head`)
and decoded whole only if it is on the page (list37: decoding all 40,000 of a window was the largest part of a
page's cost); one of the page that does not decode to what its head said has the page read again with every
record decoded, so it is skipped and counted as before (``unreadable`` counts the records whose head cannot be
read, and those whose whole cannot be read when they would be on the page). How many scans run at once is the
API's (:mod:`gamead_core.api.scan_gate`).

Paging (a keyset cursor): records are ordered by ``(submittedAt, id)``, newest first. Neither ever changes for
an ad (a status change rewrites the record, not its submission time), and the id breaks ties between ads
submitted in the same microsecond, so the order is total and fixed. A page's cursor is the key of its last
record, written ``<submittedAt in µs since the epoch>-<id>``; the next page is the records strictly older than
it. An ad submitted after the first page is newer than every cursor, so it never shows up on a later page, and
none is skipped or repeated. What a page cannot see: a record older than the newest ``scan_limit`` records
(the window slides as ads are written), one whose status moved into or out of the ``status`` filter between
pages (it is listed or not by its status when its page is read). A record rewritten while its page is read (an
ad moving queued → processing → completed) is read at its last revision: the read goes on past the window's end
(:func:`gamead_core.queue.scan.read_stream`, ``follow``), a key read twice counts once, its last revision wins
(fix35e: before, one rewritten ahead of the read was missing from the page and its ``total``). A read that
stalls is 503 ``scan_incomplete``, never a short page.
"""

from __future__ import annotations

import asyncio
import heapq
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.ids import AD_CURSOR_RULE, is_ad_cursor
from gamead_core.models import STORED, AdRecord, AdStatus
from gamead_core.queue.direct_batch import Entry
from gamead_core.queue.snapshot import read_snapshot
from gamead_core.store.record_head import record_head
from gamead_core.store.window import newest_window

SCAN_YIELD_EVERY = 128  #: a record scan lets other tasks run after this many messages
UNREADABLE_NAMED = 20  #: unreadable records a page names (it counts them all)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

Key = tuple[int, str]  #: ``(submittedAt in µs since the epoch, id)``: the order of a listing, newest first


def record_key(record: AdRecord) -> Key:
    """The paging key of ``record``: its submission time in whole µs since the epoch (exact, no float) and id."""
    return (record.submitted_at - _EPOCH) // _MICRO, record.id


def cursor_of(key: Key) -> str:
    """The cursor string of a key (``1764584102123456-01m87v538ce744cfgethvyb39n``). Pure."""
    return f"{key[0]}-{key[1]}"


def parse_cursor(cursor: str) -> Key:
    """The key a cursor stands for. Raises ``ValueError`` for a string that is not one
    (:data:`gamead_core.ids.AD_CURSOR_PATTERN`); the API checks the pattern first, so this guards a direct call."""
    if not is_ad_cursor(cursor):
        raise ValueError(f"not a page cursor ({AD_CURSOR_RULE})")
    micros, ad_id = cursor.split("-", 1)
    return int(micros), ad_id


@dataclass(frozen=True, slots=True)
class RecordsPage:
    """One page: ``records`` newest first; ``next_cursor`` (None on the last page) reads on; ``total``: records
    matching the filters in the scanned window, every page's (the cursor aside); ``scanned``: the messages read
    (the newest ones: at most ``scan_limit``); ``complete``: they were all the bucket held (False: older records
    were not read)."""

    records: list[AdRecord]
    next_cursor: str | None
    total: int
    scanned: int = 0
    complete: bool = True
    #: records of the window this gamead cannot read, skipped (attack31a F8: one made every listing a 500): how
    #: many, and the keys of the first :data:`UNREADABLE_NAMED`
    unreadable: int = 0
    unreadable_ids: tuple[str, ...] = ()
    #: matching records before the page (newer than its cursor, on the pages before; 0 without one): the page holds
    #: rows ``offset + 1`` to ``offset + len(records)`` of ``total`` (attack43b F4: page 2 read "235 shown of 735")
    offset: int = 0


async def records_page(
    js: JetStreamContext,
    *,
    status: AdStatus | None = None,
    priority: int | None = None,
    limit: int = 50,
    before: str | None = None,
    scan_limit: int = 10_000,
    timeout: float = 2.0,
) -> RecordsPage:
    """The page of records matching ``status`` and ``priority``, at most ``limit``, strictly older than the
    cursor ``before`` (None: the newest), among the newest ``scan_limit`` records (bucket messages), ordered as
    the module docstring says; with how many were read and whether that was all of them, and the records that
    cannot be read as ad records (skipped, counted: :attr:`RecordsPage.unreadable`). Raises ``ValueError``
    for a bad cursor, :class:`~gamead_core.queue.scan.ScanIncomplete` when the read stalls (``timeout`` seconds
    without a message before the end: a page of part of the window would be listed as the newest records), and
    the gamead error of a failed read (``read_stream``'s NATS boundary)."""
    after_key = parse_cursor(before) if before is not None else None
    page = await _scan(js, status, priority, limit, after_key, scan_limit, timeout, whole=False)
    if page is None:  # a record of the page whose body does not read as its head said: every record decoded
        page = await _scan(js, status, priority, limit, after_key, scan_limit, timeout, whole=True)
    assert page is not None
    return page


async def _scan(js: JetStreamContext, status: AdStatus | None, priority: int | None, limit: int,
                after_key: Key | None, scan_limit: int, timeout: float, *, whole: bool) -> RecordsPage | None:
    """One read of the window for :func:`records_page`; each record decoded whole with ``whole``, else only its
    head (:mod:`gamead_core.store.record_head`) and the page's records at the end. None (without ``whole``): a
    record of the page did not decode to what its head said, or not at all: read again with ``whole``."""
    newest = _Newest(limit + 1)  # the ``limit + 1`` newest (one more: is there more?)
    counted: dict[str, Key] = {}  # the records counted in ``total``, by id: one read again (rewritten) replaces
    seen = unreadable = 0
    bad: list[str] = []
    prefix = names.kv_prefix(names.ADS_BUCKET)
    window = await newest_window(js, names.ADS_BUCKET_STREAM, names.kv_all(names.ADS_BUCKET), max(1, scan_limit))
    async with aclosing(read_snapshot(js, names.ADS_BUCKET_STREAM, names.kv_all(names.ADS_BUCKET),
                                      start_seq=window.start, timeout=timeout)) as reads:
        async for msg in reads:  # each record of the window, at its revision when read (queue.snapshot)
            seen += 1
            if seen % SCAN_YIELD_EVERY == 0:
                await asyncio.sleep(0)
            ad_id = msg.subject.removeprefix(prefix)
            try:
                hit = _matching(msg, status, priority, whole)
            except ValueError:  # not a record this gamead reads: skipped, counted and named (attack31a F8)
                unreadable += 1
                if len(bad) < UNREADABLE_NAMED:
                    bad.append(ad_id)
                hit = None
            if hit is None and ad_id in counted:  # read before, rewritten since: its last revision wins
                del counted[ad_id]
                newest.unmatch(ad_id)
            if hit is None:
                continue
            counted[ad_id] = hit[0]
            if after_key is None or hit[0] < after_key:
                newest.put(*hit)
    ordered = newest.ordered()
    records = [_decoded(key, value, status, priority) for key, value in ordered]
    if any(record is None for record in records):
        return None
    more = len(ordered) > limit
    return RecordsPage([r for r in records[:limit] if r is not None], cursor_of(ordered[limit - 1][0]) if more
                       else None, len(counted), scanned=seen, complete=window.whole, unreadable=unreadable,
                       unreadable_ids=tuple(bad),
                       offset=0 if after_key is None else sum(1 for key in counted.values() if not key < after_key))


class _Newest:
    """The ``keep`` newest matching records of a read by key (each an :class:`AdRecord` or its undecoded bytes), a
    record read again (rewritten during the read) replacing its revision kept. One that no longer matches stays in
    the heap, set aside (``stale``), and the heap keeps one more for it: records pushed out meanwhile are not lost to
    the page or to "is there more"."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.heap: list[Key] = []
        self.records: dict[str, AdRecord | bytes] = {}  # by id, of the keys in the heap
        self.stale: set[str] = set()

    def put(self, key: Key, record: AdRecord | bytes) -> None:
        """Keep ``record`` (key ``key``) if it is among the newest; an earlier revision kept is replaced (its key is
        the same: neither part ever changes for an ad)."""
        if key[1] in self.records:
            self.stale.discard(key[1])
        elif len(self.heap) >= self.keep + len(self.stale):
            if key <= self.heap[0]:
                return  # older than every record kept: never on the page (the usual case once the heap is full)
            heapq.heappush(self.heap, key)
        else:
            heapq.heappush(self.heap, key)
        self.records[key[1]] = record
        self._trim()

    def unmatch(self, ad_id: str) -> None:
        """The last revision of ``ad_id`` no longer matches (or is deleted): set it aside."""
        if ad_id in self.records:
            self.stale.add(ad_id)

    def ordered(self) -> list[tuple[Key, AdRecord | bytes]]:
        """The records kept and matching, newest first."""
        return sorted(((key, self.records[key[1]]) for key in self.heap if key[1] not in self.stale),
                      key=lambda entry: entry[0], reverse=True)

    def _trim(self) -> None:
        while len(self.heap) > self.keep + len(self.stale):
            gone = heapq.heappop(self.heap)[1]
            del self.records[gone]
            self.stale.discard(gone)


def _matching(msg: Msg | Entry, status: AdStatus | None, priority: int | None,
              whole: bool) -> tuple[Key, AdRecord | bytes] | None:
    """The paging key and the record in ``msg`` if it matches the filters (the record undecoded when its head
    reads, :func:`~gamead_core.store.record_head.record_head`, unless ``whole``), else None (also for a delete or
    purge marker). Raises ``ValueError`` for a value that is not a record this gamead reads."""
    data = msg.data
    if not data or (msg.headers and msg.headers.get(names.HDR_KV_OPERATION)):
        return None
    head = None if whole else record_head(data)
    if head is not None:
        if (status is not None and head.status != status) or (priority is not None and head.priority != priority):
            return None
        return (head.micros, head.id), data
    if status is not None and f'"{status.value}"'.encode() not in data:
        return None  # a quick test before decoding: the status as a JSON string
    record = AdRecord.model_validate_json(data, context=STORED)  # gamead_core.store.ads.decode
    if (status is not None and record.status != status) or (priority is not None and record.priority != priority):
        return None
    return record_key(record), record


def _decoded(key: Key, value: AdRecord | bytes, status: AdStatus | None, priority: int | None) -> AdRecord | None:
    """The page's record ``value`` decoded (when undecoded), None when it does not decode or not to the key and
    filters its head gave."""
    if isinstance(value, AdRecord):
        return value
    try:
        record = AdRecord.model_validate_json(value, context=STORED)
    except ValueError:
        return None
    if record_key(record) != key or (status is not None and record.status != status) or (
            priority is not None and record.priority != priority):
        return None
    return record


async def newest_records(
    js: JetStreamContext,
    *,
    status: AdStatus | None = None,
    priority: int | None = None,
    limit: int = 50,
    scan_limit: int = 10_000,
    timeout: float = 2.0,
) -> list[AdRecord]:
    """The records of the first page (:func:`records_page`): newest first by ``(submittedAt, id)``."""
    page = await records_page(js, status=status, priority=priority, limit=limit, scan_limit=scan_limit,
                              timeout=timeout)
    return page.records
