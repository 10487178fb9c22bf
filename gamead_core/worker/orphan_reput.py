"""The reaper's re-put of a dead API's record before it publishes its work message (:func:`put_again`), and what a
lost re-put leaves it to do (:mod:`gamead_core.worker.orphans` says why the re-put is there: attack33b F1).

A re-put is a compare-and-set over the revision read (:meth:`~gamead_core.store.ads.AdStore.update_many`, whose
busy answers are tried again: :mod:`gamead_core.store.cas`). One that lost is not the end: the key is read again
from the stream leader, and if it now holds a fresh un-keyed ``queued`` record without ``Gamead-Origin`` (a re-put:
this reaper's own earlier one, unanswered then and landed since, or another lease holder's) that record is still
without a work message, so it is published at the revision read (JetStream drops a repeat: ``Nats-Msg-Id``). Only a
record deleted (its live API withdrew it) or written otherwise since (a worker has it) publishes nothing. Before
(fix34b), every lost re-put published nothing: a re-put landed late, after the round that sent it had given up on
its answer, left the ad ``queued`` without a message until ``gamead doctor --repair``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import nats.js.errors
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.errors import Conflict, GameadError
from gamead_core.models import AdStatus
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.publish import Outgoing
from gamead_core.store.ads import AdStore, decode


class _Report(Protocol):
    changed: int
    failed: list[tuple[str, int, datetime]]


def fresh(data: bytes, ad_id: str) -> int | None:
    """The priority of ``data`` if it is ``ad_id``'s record as an un-keyed submit creates it, else None (pure)."""
    try:
        record = decode(data)
    except ValueError:
        return None
    if (record.id != ad_id or record.status != AdStatus.QUEUED or record.attempts or record.idempotency_key
            or record.replay_of is not None or record.job_id or record.delivery):
        return None
    return record.priority


async def re_put_since(js: JetStreamContext, ad_id: str) -> tuple[int, bytes] | None:
    """The revision and bytes of ``ad_id``'s record if its key's last message (read from the stream leader) is a
    re-put: a fresh un-keyed ``queued`` record without ``Gamead-Origin``; else None (deleted, purged, written
    otherwise). Raises a gamead error if the read fails."""
    with nats_boundary():
        try:
            raw = await js.get_last_msg(names.ADS_BUCKET_STREAM, names.kv_subject(names.ADS_BUCKET, ad_id))
        except nats.js.errors.NotFoundError:
            return None
    if not raw.data or not raw.seq or (raw.headers or {}).get(names.HDR_ORIGIN) is not None:
        return None
    return (raw.seq, raw.data) if fresh(raw.data, ad_id) is not None else None


async def put_again(js: JetStreamContext, young: list[tuple[Outgoing, datetime]], creates: set[str],
                    report: _Report, timeout: float) -> list[tuple[Outgoing, datetime]]:
    """The records of ``young`` whose ids are in ``creates`` re-put unchanged by compare-and-set over the revision
    read (pipelined: :meth:`AdStore.update_many`), each then named at its new revision; the others as they are. A
    lost write is read again (the module doc): a re-put found there is kept, at its revision and with its bytes (the
    message carries the record as stored at the revision it names); else it is counted in
    ``report.changed`` and left out. An unanswered one, or a read again that failed, goes to ``report.failed``
    (its key read again next round) and is left out."""
    todo = [out for out, _ in young if out.ad_id in creates]
    if not todo:
        return young
    with nats_boundary():
        answers = await AdStore(js._nc, js, timeout=timeout).update_many(
            [(out.ad_id, out.payload, out.revision or 0) for out in todo])
    written: dict[str, int | tuple[int, bytes] | GameadError | None] = dict(
        zip([out.ad_id for out in todo], answers, strict=True))
    for ad_id, answer in list(written.items()):
        if isinstance(answer, Conflict):
            try:
                written[ad_id] = await re_put_since(js, ad_id)
            except GameadError as exc:
                written[ad_id] = exc
    kept = []
    for out, created in young:
        answer = written.get(out.ad_id, out.revision)
        if isinstance(answer, int):
            kept.append((out._replace(revision=answer), created))
        elif isinstance(answer, tuple):
            kept.append((out._replace(revision=answer[0], payload=answer[1]), created))
        elif answer is None:
            report.changed += 1
        else:
            report.failed.append((out.ad_id, out.revision or 0, created))
    return kept


__all__ = ["fresh", "put_again", "re_put_since"]
