"""DLQ entries of ads that are no longer dead are removed by the service itself, not left for ``doctor --repair``.

A replay or a purge deletes the ad's DLQ entry after the record moved on. A SIGKILL of nats-server after that
can bring the entry back, even minutes after it was deleted: the file store, finding its state file outdated,
rebuilds the stream from its message blocks ("Stream state outdated, last block has additional entries, will
rebuild"; attack27 F10, nats-server 2.15, 4 of 6 tries: entries of ``completed`` and ``failed`` ads, doctor
invariants 2 and 3, counted by ``dlq list`` and the DLQ size until an operator repaired them). Deletes lost in
such a rebuild are a known class of nats-server file-store bugs (lost tombstones, fixed case by case upstream);
no stream setting is documented to prevent them (``sync_interval: always``, ``embedded.sync_always``, is an
``fsync`` against an OS crash), so gamead heals instead of relying on one.

So the holder of the reaper lease heals (:class:`DlqHealer`, called by
:meth:`gamead_core.worker.mover.Sweeper.tick`): after every reconnection to NATS (a restarted server, the
only way an entry comes back), at its first round as leader, and every :data:`HEAL_EVERY` seconds at a quarter of
the pace, it walks the DLQ (headers only, :data:`HEAL_BATCH` entries a round) and removes an entry whose ad's record is
``completed`` or ``failed``: :func:`remove_entry_of`, the doctor's own repair of ``entry_of_completed`` and
``failed_with_entry`` (:mod:`gamead_core.doctor.repair`). Those statuses are final (no replay, import or
worker makes them ``dead`` again), so such an entry is never needed. An entry of a ``queued`` or
``processing`` ad is left alone: it may be a dead-lettering or a replay half-way (the doctor's
``entry_of_live_ad``); when that ad completes or is purged, the next pass removes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import aclosing

from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.errors import NotFound, error_text
from gamead_core.jobs.model import Mark
from gamead_core.models import AdStatus
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.scan import read_stream
from gamead_core.store.ads import AdStore

log = logging.getLogger(__name__)

#: Most DLQ entries one round looks at (each costs one record read; a removal two more calls) in a pass that a
#: reconnection or a new leader started; a periodic pass looks at a quarter of it (a round a second by default: a
#: DLQ of 1,000,000 entries costs 50 record reads a second then, and a pass takes under 6 hours).
HEAL_BATCH = 200
#: Seconds between two passes over the DLQ when no reconnection asked for one.
HEAL_EVERY = 300.0
#: The record statuses whose ad never needs its DLQ entry again.
FINAL = (AdStatus.COMPLETED, AdStatus.FAILED)


async def remove_entry_of(store: AdStore, dlq: DeadLetters, ad_id: str, seq: int,
                          statuses: tuple[AdStatus, ...] = FINAL, *, replayed: bool = False) -> str:
    """Remove the DLQ entry at ``seq`` of ``ad_id`` if the ad's record (read from the stream leader) has one of
    ``statuses`` and ``seq`` is still the ad's current entry; ``replayed``: only if the record says it was replayed
    from that entry (``replayOf``). Returns the :class:`~gamead_core.jobs.model.Mark`: ``ENTRY_REMOVED``,
    ``HEALED`` (nothing to do: no record, another status, the entry gone or replaced) or ``LEFT``. The rule of
    the doctor's repair (:mod:`gamead_core.doctor.repair`); raises gamead errors for NATS failures."""
    try:
        versioned = await store.get(ad_id, consistent=True)
    except NotFound:
        return Mark.HEALED
    if versioned.record.status not in statuses:
        return Mark.HEALED
    if replayed and versioned.record.replay_of != seq:
        return Mark.LEFT
    current = await dlq.current(ad_id)
    if current is None or current.seq != seq:
        return Mark.HEALED
    return Mark.ENTRY_REMOVED if await dlq.delete_seq(seq) else Mark.HEALED


class DlqHealer:
    """Passes over the DLQ removing entries of final ads (see the module doc), ``batch`` entries a round. A pass
    starts at the first round, after every reconnection, and (at ``batch // 4`` a round) ``every`` seconds after
    the last one ended.
    ``removed`` counts the entries removed, ``passes`` the passes finished."""

    def __init__(self, every: float = HEAL_EVERY, batch: int = HEAL_BATCH, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.every, self.batch = every, batch
        self.removed = 0
        self.passes = 0
        self._mono = monotonic
        self._cursor: int | None = None  #: the last sequence read by the pass under way (None: none is)
        self._up_to = 0  #: the DLQ's last sequence when the pass began: entries written later need no healing
        self._next: float | None = None  #: monotonic time the next pass is due (None: at once)
        self._reconnects: int | None = None
        self._pace = batch  #: entries a round of the pass under way

    def forget(self) -> None:
        """Leadership lost: the next leader's first round starts a pass."""
        self._cursor, self._next, self._reconnects = None, None, None

    async def tick(self, js: JetStreamContext, store: AdStore, *, reconnects: int | None = None) -> int:
        """One round: start a pass when one is due (``reconnects``, the connection's reconnect count, changed
        since the last round: a restarted nats-server may have brought entries back), go on with it for at most
        ``batch`` entries. Returns the entries removed. Never raises (a failure is logged; the pass goes on from
        where it was at the next round)."""
        if reconnects is not None and reconnects != self._reconnects:
            self._reconnects, self._cursor = reconnects, None
            self._next = None
        if self._cursor is None:
            if self._next is not None and self._mono() < self._next:
                return 0
            self._cursor, self._up_to = 0, -1
            self._pace = self.batch if self._next is None else max(1, self.batch // 4)  # urgent, or periodic
        try:
            return await self._round(DeadLetters(js), js, store)
        except Exception as exc:  # noqa: BLE001 - the reaper's round goes on; the next one resumes the pass
            log.warning("DLQ healing: %s", error_text(exc))
            return 0

    async def _round(self, dlq: DeadLetters, js: JetStreamContext, store: AdStore) -> int:
        assert self._cursor is not None
        if self._up_to < 0:
            self._up_to = await dlq.last_seq()
        removed, read, done = 0, 0, True
        async with aclosing(read_stream(js, names.DLQ_STREAM, names.DLQ_SUBJECT_WILDCARD,
                                        start_seq=self._cursor + 1, headers_only=True)) as msgs:
            async for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq > self._up_to:
                    break
                self._cursor, read = seq, read + 1
                ad_id = (msg.headers or {}).get(names.HDR_AD_ID) or msg.subject.rsplit(".", 1)[-1]
                if await remove_entry_of(store, dlq, ad_id, seq) == Mark.ENTRY_REMOVED:
                    removed += 1
                    log.warning("DLQ entry %d of ad %s removed: the ad's record is final (a delete nats-server "
                                "lost in a crash)", seq, ad_id, extra={"ad_id": ad_id, "dlq_seq": seq})
                if read >= self._pace and seq < self._up_to:
                    done = False
                    break
        self.removed += removed
        if done:
            self.passes += 1
            self._cursor, self._next = None, self._mono() + self.every
        return removed


__all__ = ["FINAL", "HEAL_BATCH", "HEAL_EVERY", "DlqHealer", "remove_entry_of"]
