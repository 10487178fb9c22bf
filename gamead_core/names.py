"""Every name gamead puts on the wire, defined once.

Streams, subjects, consumers, KV buckets and message headers are referenced only through this module so
a rename is one edit and two components can never disagree about a subject.
"""

from __future__ import annotations

from typing import Final

#: Priority levels, 1 most urgent … 5 least (the convention of the service we replace).
LEVELS: Final[tuple[int, ...]] = (1, 2, 3, 4, 5)
DEFAULT_PRIORITY: Final[int] = 3

# --- work queue -------------------------------------------------------------------------------------
ADS_STREAM: Final[str] = "GAMEAD_ADS"
ADS_SUBJECT_PREFIX: Final[str] = "gamead.ads"
ADS_SUBJECT_WILDCARD: Final[str] = f"{ADS_SUBJECT_PREFIX}.*"


#: Most work-stream partitions (``queue.partitions``); partition numbers are 0 … partitions − 1.
MAX_PARTITIONS: Final[int] = 64


def _partition(partition: int) -> int:
    """``partition`` checked: an int in 0 … MAX_PARTITIONS − 1 (never a client's string); ValueError if not."""
    if isinstance(partition, bool) or not isinstance(partition, int) or not 0 <= partition < MAX_PARTITIONS:
        raise ValueError(f"work-stream partition must be an integer 0-{MAX_PARTITIONS - 1}, got {partition!r}")
    return partition


def work_stream(partition: int = 0) -> str:
    """The work stream of one partition (``queue.partitions``): ``GAMEAD_ADS`` for partition 0 (so one partition
    is exactly the single stream of earlier versions), ``GAMEAD_ADS_1`` … for the others."""
    return ADS_STREAM if _partition(partition) == 0 else f"{ADS_STREAM}_{partition}"


def work_subject_prefix(partition: int = 0) -> str:
    """Subject prefix of one partition's levels: ``gamead.ads`` (partition 0), ``gamead.ads.<p>`` (others). The
    partitions' subjects never overlap: ``gamead.ads.*`` matches one token after ``gamead.ads`` only."""
    return ADS_SUBJECT_PREFIX if _partition(partition) == 0 else f"{ADS_SUBJECT_PREFIX}.{partition}"


def work_wildcard(partition: int = 0) -> str:
    """The subjects of one partition's stream: ``gamead.ads.*`` (partition 0), ``gamead.ads.<p>.*``."""
    return f"{work_subject_prefix(partition)}.*"


#: Work-stream metadata: how many partitions the gamead that made the stream had (``queue.partitions``), so a
#: start with another setting is told apart from a deleted stream (absent on a single-stream install of before).
PARTITIONS_METADATA: Final[str] = "gamead_partitions"


def partition_of_stream(stream: str) -> int | None:
    """Inverse of :func:`work_stream`: the partition a stream name is, or None for any other stream (a name
    like ``GAMEAD_ADS_01`` or ``GAMEAD_ADS_X`` is not a partition)."""
    if stream == ADS_STREAM:
        return 0
    head, _, tail = stream.rpartition("_")
    if head != ADS_STREAM or not tail.isdigit() or tail != str(int(tail)) or not 0 < int(tail) < MAX_PARTITIONS:
        return None
    return int(tail)


def level_subject(level: int, partition: int = 0) -> str:
    """Subject of one priority level: ``gamead.ads.p1`` … ``gamead.ads.p5`` (partition 0), ``gamead.ads.2.p1``
    … in partition 2."""
    return f"{work_subject_prefix(partition)}.p{level}"


def level_consumer(level: int, partition: int = 0) -> str:
    """Durable pull consumer that serves one priority level of one partition: ``gamead-p3`` (partition 0),
    ``gamead-2-p3`` (partition 2; consumer names are unique across partitions so a label names one)."""
    return f"gamead-p{level}" if _partition(partition) == 0 else f"gamead-{partition}-p{level}"


def level_of_subject(subject: str) -> int:
    """Inverse of :func:`level_subject` (any partition)."""
    return int(subject.rsplit(".p", 1)[1])


# --- dead-letter queue -------------------------------------------------------------------------------
DLQ_STREAM: Final[str] = "GAMEAD_DLQ"
DLQ_SUBJECT_PREFIX: Final[str] = "gamead.dlq"
DLQ_SUBJECT_WILDCARD: Final[str] = f"{DLQ_SUBJECT_PREFIX}.*"


def dlq_subject(ad_id: str) -> str:
    """One subject per dead ad: the stream keeps one entry per ad (``max_msgs_per_subject=1``)."""
    return f"{DLQ_SUBJECT_PREFIX}.{ad_id}"


#: Streams earlier versions of gamead created and this one no longer uses. ``GAMEAD_ADVISORIES`` captured the
#: level consumers' max-deliveries advisories for a mover; since the level consumers have no delivery limit
#: (``max_deliver = -1``) no such advisory is sent, and the reaper's sweep finds stranded messages by counting.
#: ``gamead doctor`` notes one that still exists and ``gamead doctor --repair`` deletes it (with its consumer).
OBSOLETE_STREAMS: Final[tuple[str, ...]] = ("GAMEAD_ADVISORIES",)

# --- audit trail -------------------------------------------------------------------------------------
#: Every operator action (gamead_core.audit): limits retention (``audit.*``), one subject per action.
AUDIT_STREAM: Final[str] = "GAMEAD_AUDIT"
AUDIT_SUBJECT_PREFIX: Final[str] = "gamead.audit"
AUDIT_SUBJECT_WILDCARD: Final[str] = f"{AUDIT_SUBJECT_PREFIX}.>"


def audit_subject(action: str) -> str:
    """Subject of one action's records: ``gamead.audit.replay``, ``gamead.audit.scale.set``. ``action`` is a
    member of ``gamead_core.audit.AuditAction`` (never a client's string)."""
    return f"{AUDIT_SUBJECT_PREFIX}.{action}"


#: One control subject per worker (core NATS request/reply, no stream): ``gamead.control.worker.<key>``, ``<key>``
#: the worker id's registry key (``gamead_core.registry.node_key``: one token, no ``.``, ``*`` or ``>``).
#: ``gamead_core.worker.quiet`` listens there; ``gamead_core.api.routes_workers`` asks ``quiet`` / ``resume``.
WORKER_CONTROL_PREFIX: Final[str] = "gamead.control.worker"


def worker_control_subject(key: str) -> str:
    """The control subject of the worker whose registry key is ``key`` (never a client's string as is)."""
    return f"{WORKER_CONTROL_PREFIX}.{key}"


# --- key-value buckets -------------------------------------------------------------------------------
ADS_BUCKET: Final[str] = "gamead_ads"
#: the stream behind the ad-record bucket (JetStream's KV convention, ADR-8: ``KV_<bucket>``)
ADS_BUCKET_STREAM: Final[str] = f"KV_{ADS_BUCKET}"
#: stream metadata of the ad-record bucket: seconds a completed or failed record lives (its per-key TTL)
RECORDS_FINAL_TTL_METADATA: Final[str] = "gamead_final_record_ttl"
REGISTRY_BUCKET: Final[str] = "gamead_registry"
#: Leader leases (key ``autoscaler``: which process runs the autoscaler) and the autoscaler's shared state.
LEASES_BUCKET: Final[str] = "gamead_leases"
#: Key (in LEASES_BUCKET) of the lease held by the one worker that hands back the ads of dead workers.
REAPER_LEASE: Final[str] = "reaper"
#: Key (in LEASES_BUCKET) of the lease of the one worker running a suspect ad alone (gamead_core.worker.turn_rule).
SUSPECT_LEASE: Final[str] = "suspect"
SCALING_BUCKET: Final[str] = "gamead_scaling"
#: One key per API node, rewritten by its storage probe (does JetStream still store writes?).
HEALTH_BUCKET: Final[str] = "gamead_health"
#: Operator jobs (DLQ replay, purge, import): one document per job plus its work list, with a retention limit.
JOBS_BUCKET: Final[str] = "gamead_jobs"
#: One note per node process that stopped cleanly (key: its incarnation), kept a day: ``gamead_core.registry.stops``.
STOPS_BUCKET: Final[str] = "gamead_stops"


def job_key(job_id: str) -> str:
    """Key of a job's document in :data:`JOBS_BUCKET` (``job.<id>``; ``job_id`` checked by ``gamead_core.ids``)."""
    return f"job.{job_id}"


def job_work_key(job_id: str, chunk: int) -> str:
    """Key of one chunk of a job's work list (``job.<id>.work.<n>``)."""
    return f"job.{job_id}.work.{chunk}"


def job_input_key(job_id: str) -> str:
    """Key of what a client sent for a job to act on (ids, or entries to import): ``job.<id>.input``."""
    return f"job.{job_id}.input"


#: Key in :data:`JOBS_BUCKET` naming the doctor repair job that holds the one repair at a time (compare-and-set:
#: ``gamead_core.api.repair_claim``).
REPAIR_CLAIM_KEY: Final[str] = "claim.repair"

#: Subject filter that matches job documents only (not their work lists or inputs).
JOBS_DOC_SUBJECTS: Final[str] = f"$KV.{JOBS_BUCKET}.job.*"

# --- headers -----------------------------------------------------------------------------------------
HDR_MSG_ID: Final[str] = "Nats-Msg-Id"
HDR_AD_ID: Final[str] = "Gamead-Ad-Id"
#: The operator job that wrote a message (a DLQ entry written by an import job).
HDR_JOB_ID: Final[str] = "Gamead-Job-Id"
#: JetStream's optimistic-concurrency header: the publish is refused unless the subject's last sequence is this.
HDR_EXPECTED_LAST_SUBJECT_SEQ: Final[str] = "Nats-Expected-Last-Subject-Sequence"
#: W3C Trace Context (https://www.w3.org/TR/trace-context/): the trace an ad's message belongs to, set by the
#: OpenTelemetry propagator when tracing is on (gamead_core.telemetry.tracing); ``tracestate`` may follow it.
HDR_TRACEPARENT: Final[str] = "traceparent"
#: What nats-py calls the status line of a NATS control message (``NATS/1.0 404``, ``408``…): a pull that found
#: no message, a request that timed out, a direct get of a missing key (NATS ADR-9, ADR-31).
HDR_STATUS: Final[str] = "Status"
#: On a KV message: ``DEL`` or ``PURGE`` for a delete/purge marker (NATS ADR-8); absent on a value.
HDR_KV_OPERATION: Final[str] = "KV-Operation"
#: On an ad's work message published by the un-keyed submit path: the KV revision of the ``queued`` record the
#: API created (and awaited) before publishing it, so a worker's first delivery need not read the record back
#: (issue 14.2). Digits only; absent on keyed ads, replays, sweeps and repairs (the worker then reads the record).
HDR_RECORD_REVISION: Final[str] = "Gamead-Record-Revision"
#: On a record create by an API node (records' stream): the incarnation that wrote it (``<node id>:<pid>@<started
#: at>``, gamead_core.registry.incarnation). Gone with the next write of the key: whoever finds it, finds the record
#: as that API created it (gamead_core.worker.orphans, when that API died).
HDR_ORIGIN: Final[str] = "Gamead-Origin"
#: On a record's delete marker an API wrote to withdraw an ad it answered 503 (gamead_core.store.create_fence,
#: AdStore.withdraw_many): its incarnation, as HDR_ORIGIN. The client was told "not queued: safe to resend", so a
#: message of that ad found later is an ad analysed without a record (gamead doctor: analysed_without_record).
HDR_WITHDRAWN: Final[str] = "Gamead-Withdrawn"
#: JetStream's per-message TTL header (seconds, ADR-43; nats-server >= 2.11): the final records' expiry.
HDR_TTL: Final[str] = "Nats-TTL"
#: On a delete marker the server wrote itself (a per-key TTL ran out, ADR-48): why (``MaxAge``, ``Remove``…).
HDR_MARKER_REASON: Final[str] = "Nats-Marker-Reason"
#: JetStream atomic batch publish (NATS ADR-50, nats-server >= 2.12): the batch a message belongs to (<= 64
#: characters), its 1-based place in the batch (no gaps), and ``1`` on the message that commits it. Stored on the
#: messages of a committed batch (records and work messages of ``POST /ads/batch``); nothing reads them back.
HDR_BATCH_ID: Final[str] = "Nats-Batch-Id"
HDR_BATCH_SEQUENCE: Final[str] = "Nats-Batch-Sequence"
HDR_BATCH_COMMIT: Final[str] = "Nats-Batch-Commit"

# --- KV buckets on the wire (NATS ADR-8) ----------------------------------------------------------


def kv_stream(bucket: str) -> str:
    """The stream that holds KV bucket ``bucket``: ``KV_<bucket>``."""
    return f"KV_{bucket}"


def kv_prefix(bucket: str) -> str:
    """The subject prefix of the keys of ``bucket``: ``$KV.<bucket>.`` (a key's subject is prefix + key)."""
    return f"$KV.{bucket}."


def kv_subject(bucket: str, key: str) -> str:
    """The subject a put of ``key`` in ``bucket`` is published to: ``$KV.<bucket>.<key>`` (``key`` validated
    by the caller: an ad or job id, never a client's string as is)."""
    return f"{kv_prefix(bucket)}{key}"


def kv_all(bucket: str) -> str:
    """The subject filter of every key of ``bucket``: ``$KV.<bucket>.>``."""
    return f"{kv_prefix(bucket)}>"


# --- JetStream API ---------------------------------------------------------------------------------


def work_ack_consumer(subject: str) -> tuple[str, str] | None:
    """``(stream, consumer)`` of the reply subject of a delivery from a level consumer of a work stream (any
    partition): ``$JS.ACK[.<domain>.<account hash>].GAMEAD_ADS.gamead-p<N>.<delivered>.<sseq>.<cseq>.<ts>.
    <pending>…``; None for any other subject (pure)."""
    tokens = subject.split(".")
    if len(tokens) < 9 or len(subject) > 512 or tokens[:2] != ["$JS", "ACK"]:
        return None
    if any(not t or "*" in t or ">" in t or not t.isprintable() or " " in t for t in tokens):
        return None
    i = next((j for j in range(2, len(tokens)) if partition_of_stream(tokens[j]) is not None), None)
    if i is None:
        return None
    partition = partition_of_stream(tokens[i])
    assert partition is not None
    if (len(tokens) >= i + 7 and tokens[i + 1] in {level_consumer(lvl, partition) for lvl in LEVELS}
            and all(t.isdigit() for t in tokens[i + 2:i + 7])):
        return tokens[i], tokens[i + 1]
    return None


def is_work_ack_subject(subject: str) -> bool:
    """True for the reply subject of a delivery from a level consumer of a work stream (:func:`work_ack_consumer`):
    the only subjects gamead sends a ``nak`` to on behalf of a dead worker (read from its heartbeat)."""
    return work_ack_consumer(subject) is not None


def pull_next_subject(stream: str, consumer: str) -> str:
    """Subject of the raw JetStream pull API (used for ``no_wait`` pulls nats-py does not expose)."""
    return f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
