"""Where the live ads' records sit in the ad-record bucket, by stream sequence: the reads behind the intake gate
(:mod:`gamead_core.stats.records_room`, review31 R1/R1b).

The bucket drops its records in write order (``discard: old``: the lowest stream sequence first), so what matters
is the lowest sequence of a live ad's record, not how old the ad's message is: a record is rewritten at every
attempt (``processing``, ``retryAt``, parked while the DLQ is full), and a rewritten record sits at the new end.

Reading every live ad's record would cost one get per ad in the work streams, so :func:`live_record_floor` reads a
bound instead: for each work stream, the first :data:`HEADS` messages' records (a direct get of the record's
subject: its revision is its stream sequence), and for the messages after them the bucket's first record written
at or after the next message's publish time less ``slack`` seconds (a direct get by ``start_time``): an ad's record
is created within ``slack`` of its message's publish (the API writes it just before, the keyed path just after;
``slack`` is twice ``api.publish_timeout``), and later writes only raise its sequence. The bound is sound but for a
message published again long after its record (the reaper's repair of a record without its message): rare, and
that record is at worst dropped, as before the gate.

:func:`records_before` counts the bucket's records stored before a sequence (its interior holes are the earlier
revisions of rewritten records, so sequences overstate it): an ephemeral consumer's ``num_pending`` from there,
read only when the sequences alone cannot already tell. Every read raises nats-py's errors untranslated.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.manager import JetStreamManager

from gamead_core import names
from gamead_core.queue.depth import peek_next

#: work-stream messages per partition whose records are read one by one (the rest are bounded by time)
HEADS = 4


def floor_of(record_seqs: list[int | None], rest: list[int | None]) -> int | None:
    """The lowest stream sequence a live ad's record can have: the least of the heads' record sequences
    (``record_seqs``, None for a record not there: already dropped, nothing left to keep) and the bounds for the
    messages after them (``rest``, None: none there). None when no live ad has a record. Pure."""
    return min((s for s in (*record_seqs, *rest) if s is not None), default=None)


async def _heads(js: JetStreamContext, partition: int) -> tuple[list[str | None], float | None]:
    """The ad ids (None: no ``Gamead-Ad-Id``) of the first :data:`HEADS` messages of ``partition``'s work stream,
    and the publish time (epoch s) of the next one (None: there is none)."""
    stream, subject = names.work_stream(partition), names.work_wildcard(partition)
    ids: list[str | None] = []
    seq = 0
    while True:
        msg = await peek_next(js, stream, subject, seq)
        if msg is None:
            return ids, None
        if len(ids) == HEADS:
            return ids, msg.time.timestamp() if msg.time is not None else 0.0
        ids.append((msg.headers or {}).get(names.HDR_AD_ID))
        seq = msg.seq


async def _record_seq(js: JetStreamContext, ad_id: str) -> int | None:
    try:
        got = await js.get_msg(names.ADS_BUCKET_STREAM, subject=names.kv_subject(names.ADS_BUCKET, ad_id), direct=True)
    except nats.js.errors.NotFoundError:
        return None
    return got.seq


async def seq_from(js: JetStreamContext, stream: str, when: float) -> int | None:
    """The stream sequence of ``stream``'s first message stored at or after ``when`` (epoch s), or None (none is):
    a direct get by ``start_time`` (nats-py's ``get_msg`` does not offer it)."""
    stamp = datetime.fromtimestamp(max(0.0, when), UTC).isoformat().replace("+00:00", "Z")
    reply = await js._nc.request(f"{js._prefix}.DIRECT.GET.{stream}", json.dumps({"start_time": stamp}).encode(),
                                 timeout=js._timeout)
    try:
        return JetStreamManager._lift_msg_to_raw_msg(reply).seq
    except nats.js.errors.NotFoundError:
        return None


async def live_record_floor(js: JetStreamContext, partitions: int, slack: float) -> int | None:
    """A lower bound of the lowest stream sequence of a live ad's record in the bucket (module doc), or None when
    no ad is live (or none has a record)."""
    heads = await asyncio.gather(*(_heads(js, p) for p in range(partitions)))
    ids = [i for got, _ in heads for i in got if i is not None]
    seqs = await asyncio.gather(*(_record_seq(js, i) for i in ids))
    unnamed = [1 for got, _ in heads for i in got if i is None]  # a head naming no ad: its record is anywhere
    times = [t for _, t in heads if t is not None]
    rest = await asyncio.gather(*(seq_from(js, names.ADS_BUCKET_STREAM, t - slack) for t in times))
    return floor_of([*seqs, *unnamed], list(rest))


async def records_before(js: JetStreamContext, info: Any, seq: int) -> int:
    """How many records the bucket (its ``stream_info``, ``info``) stores below stream sequence ``seq``: the next
    ones it drops. An ephemeral consumer's ``num_pending`` from ``seq``, made and deleted here."""
    first, last, held = int(info.state.first_seq or 0), int(info.state.last_seq or 0), int(info.state.messages or 0)
    if seq <= first or held == 0:
        return 0
    if seq > last:
        return held
    config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=seq,
                            ack_policy=AckPolicy.NONE, inactive_threshold=30.0, mem_storage=True, num_replicas=1)
    made = await js.add_consumer(names.ADS_BUCKET_STREAM, config)
    try:
        return max(0, held - int(made.num_pending or 0))
    finally:
        try:
            await js.delete_consumer(names.ADS_BUCKET_STREAM, made.name)
        except Exception:  # noqa: BLE001 - it expires by itself after inactive_threshold
            pass


__all__ = ["HEADS", "floor_of", "live_record_floor", "records_before", "seq_from"]
