"""Retention of the ad-record KV bucket: bounded in age and size, completed and failed records first.

A KV bucket's ``max_age`` applies to every key alike, so on its own it would expire a long-queued ad's record
as early as a finished one's. Instead:

* completed and failed records (nothing ever moves a record out of those statuses) are written with a
  per-key TTL, ``records.completed_max_age`` (the ``Nats-TTL`` header of ADR-43, nats-server ≥ 2.11; the
  bucket's stream has ``allow_msg_ttl``). ``dead`` records are not among them: a DLQ replay moves them back
  to ``queued``, and the DLQ keeps its entry for ``dlq.max_age``;
* the bucket's ``max_age`` (``records.max_age``) bounds every other record, counted from its last write;
* the bucket's ``max_bytes`` (``records.max_bytes``) bounds the disk, with ``discard: old``: a full bucket
  drops its oldest records rather than refusing a worker's write (nats-py creates KV buckets with
  ``discard: new``, which would stop the service when the bucket fills). A completed or failed record lost
  that way only ends ``GET /ads/{id}`` and its Idempotency-Key early (a resend within the key's duplicate window
  is 409 ``idempotency_key_expired``: :mod:`gamead_core.intake`). A *live* ad's record is not harmless to lose:
  it keeps the ad's budget (``attempts``), which a record recreated from the message would start again
  (attack31a F1). So the API refuses new ads while the records the full bucket drops next include a live
  ad's (``records.refuse_at``: :mod:`gamead_core.stats.records_room`), and a worker that still finds a
  redelivered ad's record gone recreates it with its attempts floored by the deliveries, loudly
  (:func:`gamead_core.worker.records.recreate`).

The completed-record TTL is kept in the bucket's own stream metadata (:data:`~gamead_core.names.
RECORDS_FINAL_TTL_METADATA`), so every writer (API nodes, workers, whatever their own config says) applies
the bucket's one policy; the topology check (:mod:`gamead_core.queue.topology`) sets it with the limits,
updating a live bucket in place like the streams.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamInfo

from gamead_core import names
from gamead_core.config import QueueSettings, RecordSettings

log = logging.getLogger(__name__)

#: fields of a live bucket that gamead updates in place when its settings change
_LIMITS = ("max_age", "max_bytes", "discard", "allow_msg_ttl")


def records_stream_config(qs: QueueSettings, rs: RecordSettings) -> StreamConfig:
    """The ad-record bucket as a JetStream stream: the KV conventions of ADR-8 (what ``create_key_value``
    makes: one subject per key, rollups, no deletes through the stream API, direct gets), one revision per
    key, and gamead's retention (module docstring)."""
    return StreamConfig(
        name=names.ADS_BUCKET_STREAM,
        description="gamead ad records (revisioned; compare-and-set updates)",
        subjects=[names.kv_all(names.ADS_BUCKET)],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=qs.replicas,
        max_msgs_per_subject=1,  # history 1: every message in the stream is a current record
        max_msgs=-1,
        max_consumers=-1,
        max_age=rs.max_age,
        max_bytes=rs.max_bytes,
        discard=DiscardPolicy.OLD,
        duplicate_window=min(120.0, rs.max_age),
        allow_rollup_hdrs=True,
        deny_delete=True,
        allow_direct=True,  # reads skip the JSON/base64 STREAM.MSG.GET path
        allow_msg_ttl=True,
        allow_atomic=True,  # POST /ads/batch creates its records as atomic batches (NATS ADR-50)
        metadata={names.RECORDS_FINAL_TTL_METADATA: str(int(rs.completed_max_age))},
    )


def final_record_ttl(info: StreamInfo) -> float | None:
    """The per-key TTL (seconds) of completed and failed records that the bucket's metadata names; None for
    a bucket gamead has not configured (its records then live by the bucket's own limits)."""
    config = info.config
    if not config.allow_msg_ttl:
        return None
    value = (config.metadata or {}).get(names.RECORDS_FINAL_TTL_METADATA)
    try:
        return float(value) if value else None
    except ValueError:
        return None


def bucket_scope(created: datetime | None) -> str | None:
    """Which records bucket one made at ``created`` (its stream's ``StreamInfo.created``) is, among every NATS's and
    every one made again under the same name: that time as text (None when the server does not say). The scope of
    the record cache (:mod:`gamead_core.api.cache`), shared by the deployments of one Redis; it changes when the
    bucket is deleted and made again (leftout60). Pure."""
    return str(created) if created else None


def records_scope(made_at: Mapping[str, datetime | None]) -> str | None:
    """The records bucket's scope (:func:`bucket_scope`) in a listing of the streams (stream → when it was made: a
    topology check's, :attr:`gamead_core.queue.topology_report.TopologyReport.made_at`); None when it is not in it."""
    return bucket_scope(made_at.get(names.ADS_BUCKET_STREAM))

