"""Records this gamead cannot read (attack31a F8): a problem when their ad is live, a note otherwise.

:func:`gamead_core.doctor.records.first_look` names the records it could not decode. One whose ad has a message
waiting in its work stream or a DLQ entry is an ad that exists while ``GET /ads/{id}`` answers 409
``record_unreadable`` and listings skip it: the finding ``record_unreadable`` (exit 1), confirmed after
``doctor.settle`` by reading the record again from the stream leader (a worker delivering the message rebuilds
it meanwhile: :func:`gamead_core.worker.records.rebuild`). One with neither stays the note ``unreadable_record``
(nothing of an ad depends on it). The fix is in the detail: the worker's rebuild at the next delivery, or, for a
DLQ entry alone, deleting the key so ``--repair`` makes the dead record from the entry.
"""

from __future__ import annotations

from gamead_core import names
from gamead_core.doctor.model import Finding, Note, ReadStats
from gamead_core.doctor.verdict import Look, add
from gamead_core.errors import GameadError
from gamead_core.store.ads import AdStore
from gamead_core.store.unreadable import UnreadableRecord


def fix_of(ad_id: str, bad: UnreadableRecord, waiting: bool) -> str:
    """The detail of a confirmed ``record_unreadable`` of ``ad_id`` (``waiting``: a message of it waits). Pure."""
    head = f"revision {bad.revision}: {bad.why}; "
    if waiting:
        return head + ("its work message waits: a worker rebuilds the record from it at its next delivery "
                       f"(queue.ack_wait at the latest), or at once after nats kv del {names.ADS_BUCKET} {ad_id}")
    return head + (f"only its DLQ entry holds it: nats kv del {names.ADS_BUCKET} {ad_id}, then gamead doctor --repair "
                   "makes the dead record from the entry")


class UnreadableRecords:
    """The records ``broken`` (ids) the first look (``look``) could not read: those of live ads kept to confirm
    (:attr:`suspect`), the others added to the note ``note``."""

    def __init__(self, store: AdStore, broken: list[str], look: Look, note: Note) -> None:
        self._store = store
        self._waiting = {ad_id: bool(look.work.get(ad_id)) for ad_id in broken
                         if look.work.get(ad_id) or look.entries.get(ad_id)}
        for ad_id in broken:
            if ad_id not in self._waiting:
                add(note, ad_id)

    @property
    def suspect(self) -> bool:
        """Whether a live ad's record was unreadable (the second look must read it again)."""
        return bool(self._waiting)

    async def confirm(self, stats: ReadStats, finding: Finding) -> None:
        """Read each suspect record again from the stream leader; still unreadable: added to ``finding`` with its
        fix. Never raises for one record (a record rebuilt, deleted, or unreachable now is not reported)."""
        for ad_id, waiting in sorted(self._waiting.items()):
            stats.record_rereads += 1
            try:
                await self._store.get(ad_id, consistent=True)
            except UnreadableRecord as bad:
                add(finding, ad_id, fix_of(ad_id, bad, waiting))
            except GameadError:
                continue


__all__ = ["UnreadableRecords", "fix_of"]
