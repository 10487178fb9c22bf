"""The JetStream topology gamead needs, declared once, and the pure rules that compare it with what exists.

No I/O here: :func:`wanted_topology` declares every stream, consumer and bucket from the settings; the
:func:`compare_stream` / :func:`compare_consumer` rules and :func:`plan` decide, from a :class:`Snapshot` of what
exists, what to create, update in place or refuse. :mod:`gamead_core.queue.topology` reads the snapshot and
acts on the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from gamead_core import names
from gamead_core.audit.log import audit_stream_config
from gamead_core.config import GameadSettings, QueueSettings, RecordSettings
from gamead_core.jobs.store import jobs_kv_config
from gamead_core.queue.dlq import dlq_stream_config
from gamead_core.queue.partitions import per_partition_limit
from gamead_core.registry import bucket_config as registry_bucket_config
from gamead_core.registry.stops import stops_bucket_config
from gamead_core.store.retention import records_stream_config


#: Upper bound of unacknowledged ads per level across all workers (each worker holds ≤ its
#: ``worker.concurrency`` + ``worker.prefetch`` ads).
MAX_ACK_PENDING = 20_000


def stream_config(qs: QueueSettings, partition: int = 0) -> StreamConfig:
    """The work stream of ``partition`` (``GAMEAD_ADS`` for 0): ``queue.max_msgs``/``max_bytes`` split over the
    ``queue.partitions`` streams (:func:`~gamead_core.queue.partitions.per_partition_limit`), ``queue.replicas``
    replicas each."""
    parts = qs.partitions
    return StreamConfig(
        name=names.work_stream(partition),
        description="gamead work queue: one subject per priority level"
        + (f" (partition {partition} of {parts})" if parts > 1 else ""),
        subjects=[names.work_wildcard(partition)],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        max_msgs=per_partition_limit(qs.max_msgs, parts),
        max_bytes=per_partition_limit(qs.max_bytes, parts),
        duplicate_window=qs.duplicate_window,
        num_replicas=qs.replicas,
        # direct gets in batches: how `gamead doctor` lists the waiting ads (1 API call per 1,000 messages; a
        # work-queue stream refuses the ordered consumer a listing would otherwise use)
        allow_direct=True,
        # POST /ads/batch writes its messages as atomic batches, one ack each (NATS ADR-50; gamead_core.queue.atomic)
        allow_atomic=True,
        metadata={names.PARTITIONS_METADATA: str(parts)},
    )


def consumer_config(level: int, qs: QueueSettings, partition: int = 0) -> ConsumerConfig:
    """The durable pull consumer of one level. No delivery limit (``max_deliver = -1``): a delivery lost to
    our storage, a shutdown or another ad's crash is not an analysis attempt, so the analysis budget
    (``worker.max_attempts``) is kept in the ad's record instead (gamead_core.worker.budget), and JetStream
    never strands a message past its consumer."""
    name = names.level_consumer(level, partition)
    return ConsumerConfig(
        durable_name=name,
        name=name,
        description=f"gamead workers, priority {level}" + (f", partition {partition}" if partition else ""),
        filter_subject=names.level_subject(level, partition),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=qs.ack_wait,
        max_deliver=-1,
        max_ack_pending=MAX_ACK_PENDING,
        max_waiting=512,
    )


def kv_config(qs: QueueSettings, rs: RecordSettings | None = None) -> StreamConfig:
    """The ad-record bucket, as its stream: KV conventions plus gamead's retention (``records.*``; see
    :mod:`gamead_core.store.retention`)."""
    return records_stream_config(qs, rs or RecordSettings())


def plain_bucket_config(bucket: str, description: str, replicas: int) -> KeyValueConfig:
    """A KV bucket with one value per key on disk and no TTL: the leases and scaling buckets (as
    ``gamead_core.scaling.store.open_bucket`` creates them)."""
    return KeyValueConfig(bucket=bucket, description=description, history=1, storage=StorageType.FILE,
                          replicas=replicas)


#: Seconds a storage-probe key lives in ``gamead_health``: a stopped node's key goes away on its own.
HEALTH_TTL = 3600.0


def health_bucket_config(qs: QueueSettings) -> KeyValueConfig:
    """``gamead_health``: one key per API node, rewritten by its storage probe (file storage, like the ads)."""
    return KeyValueConfig(bucket=names.HEALTH_BUCKET, description="gamead storage probe: one key per API node",
                          history=1, ttl=HEALTH_TTL, storage=StorageType.FILE, replicas=qs.replicas)


# --- what gamead wants ------------------------------------------------------------------------------------

Kind = Literal["stream", "consumer", "bucket"]


@dataclass(frozen=True)
class Wanted:
    """One object gamead needs: a stream, a consumer (on ``stream``) or a KV bucket (held by ``stream``; its
    ``config`` a :class:`KeyValueConfig`, or the bucket's whole :class:`StreamConfig`)."""

    kind: Kind
    name: str
    stream: str
    config: StreamConfig | ConsumerConfig | KeyValueConfig
    essential: bool = False

    @property
    def label(self) -> str:
        """``consumer gamead-p3``: how logs, ``/readyz`` and ``/v1/stats`` name the object."""
        return f"{self.kind} {self.name}"

    def stream_config(self) -> StreamConfig:
        """The stream config to compare with what exists (for a bucket: the parts ADR-8 fixes)."""
        if isinstance(self.config, StreamConfig):
            return self.config
        assert isinstance(self.config, KeyValueConfig)
        return kv_stream_config(self.config)


def kv_stream_config(kv: KeyValueConfig) -> StreamConfig:
    """The stream a KV bucket is (NATS ADR-8, as nats-py's ``create_key_value`` builds it), reduced to what
    :func:`compare_stream` checks: subjects, retention, storage, and the limits ``history`` and ``ttl`` and
    ``max_bytes`` turn into."""
    return StreamConfig(
        name=names.kv_stream(kv.bucket),
        subjects=[names.kv_all(kv.bucket)],
        retention=RetentionPolicy.LIMITS,
        storage=kv.storage or StorageType.FILE,
        max_msgs_per_subject=kv.history,
        max_age=kv.ttl or None,
        max_bytes=kv.max_bytes,
        allow_direct=kv.direct or None,  # turned on in place for a bucket made without (a STREAM_LIMITS field)
        discard=None,  # ADR-8 fixes these; nats-py's defaults are not what a bucket has
        duplicate_window=None,
    )


def wanted_topology(settings: GameadSettings, *, atomic: bool = True) -> tuple[Wanted, ...]:
    """Every object gamead creates, in creation order (streams before their consumers). ``atomic`` False (a
    nats-server older than 2.12.1, :func:`gamead_core.queue.atomic.server_takes_atomic`): no stream asks for
    ``allow_atomic``, which such a server drops: before, every start "repaired" it on GAMEAD_ADS and gamead_ads
    and `gamead doctor` reported a difference no one could clear (attack39b F13). Pure."""
    wanted = _wanted(settings)
    if atomic:
        return wanted
    return tuple(replace(w, config=w.config.evolve(allow_atomic=None))
                 if isinstance(w.config, StreamConfig) and w.config.allow_atomic else w for w in wanted)


def _wanted(settings: GameadSettings) -> tuple[Wanted, ...]:
    qs = settings.queue
    parts = range(qs.partitions)
    return (
        *(Wanted("stream", names.work_stream(p), names.work_stream(p), stream_config(qs, p), essential=True)
          for p in parts),
        Wanted("stream", names.DLQ_STREAM, names.DLQ_STREAM, dlq_stream_config(settings.dlq, qs)),
        Wanted("stream", names.AUDIT_STREAM, names.AUDIT_STREAM, audit_stream_config(settings.audit, qs)),
        *(Wanted("consumer", names.level_consumer(level, p), names.work_stream(p), consumer_config(level, qs, p))
          for p in parts for level in names.LEVELS),
        Wanted("bucket", names.ADS_BUCKET, names.ADS_BUCKET_STREAM, kv_config(qs, settings.records), essential=True),
        Wanted("bucket", names.REGISTRY_BUCKET, names.kv_stream(names.REGISTRY_BUCKET),
               registry_bucket_config(settings.registry, qs.replicas)),
        Wanted("bucket", names.LEASES_BUCKET, names.kv_stream(names.LEASES_BUCKET),
               plain_bucket_config(names.LEASES_BUCKET, "gamead leader leases (the autoscaler's)", qs.replicas)),
        Wanted("bucket", names.SCALING_BUCKET, names.kv_stream(names.SCALING_BUCKET),
               plain_bucket_config(names.SCALING_BUCKET, "gamead autoscaler state, decisions and override",
                                   qs.replicas)),
        Wanted("bucket", names.HEALTH_BUCKET, names.kv_stream(names.HEALTH_BUCKET), health_bucket_config(qs)),
        Wanted("bucket", names.JOBS_BUCKET, names.kv_stream(names.JOBS_BUCKET), jobs_kv_config(settings.jobs, qs.replicas)),
        Wanted("bucket", names.STOPS_BUCKET, names.kv_stream(names.STOPS_BUCKET), stops_bucket_config(qs.replicas)),
    )


def limit_values(target: StreamConfig | ConsumerConfig, have: StreamConfig | ConsumerConfig,
                 limits: tuple[str, ...]) -> dict[str, object]:
    """The fields to change on ``have`` to bring its ``limits`` to ``target``'s: gamead's ``metadata`` keys added
    to the server's, and a duplicate window cut to a new, shorter ``max_age`` (a KV bucket's ttl lowered below
    the window nats-py gave it at creation, min(120 s, ttl): JetStream refused the update, NATS 10052
    "duplicates window can not be larger then max age", and the bucket kept its old ttl). Pure."""
    values: dict[str, object] = {k: getattr(target, k) for k in limits}
    if "metadata" in values:  # add or change gamead's keys, keep the server's
        values["metadata"] = {**(getattr(have, "metadata", None) or {}), **(values["metadata"] or {})}  # type: ignore[dict-item]
    age, window = values.get("max_age"), getattr(have, "duplicate_window", None) or 0
    if isinstance(age, (int, float)) and age > 0 and "duplicate_window" not in values and window > age:
        values["duplicate_window"] = age
    return values


# --- pure comparison ---------------------------------------------------------------------------------------

#: Stream fields gamead updates in place when they differ from its config (JetStream allows the change), and
#: the keys gamead sets in a stream's ``metadata``.
STREAM_LIMITS = ("max_msgs", "max_bytes", "max_age", "duplicate_window", "discard", "max_msgs_per_subject",
                 "allow_msg_ttl", "allow_direct", "allow_atomic")
#: Consumer fields gamead updates in place (CONSUMER.CREATE of an existing durable updates these).
CONSUMER_LIMITS = ("ack_wait", "max_deliver", "max_ack_pending")


@dataclass(frozen=True)
class Difference:
    """How an existing object differs from gamead's config."""

    incompatible: str | None = None  #: why gamead cannot use it (reported, never overwritten); None = usable
    limits: tuple[str, ...] = ()  #: limit fields that differ (updated in place at start-up)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) < 1e-3  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
    return a == b


def _enum_value(v: object) -> object:
    return getattr(v, "value", v)


def compare_stream(wanted: StreamConfig, have: StreamConfig) -> Difference:
    """Compare an existing stream with gamead's: retention, subjects (as a set) and storage type must match;
    the fields in :data:`STREAM_LIMITS` that gamead sets (not None or 0, nats-py's "unset") may differ and are
    listed."""
    label = f"stream {wanted.name}"
    if _enum_value(have.retention) != _enum_value(wanted.retention or RetentionPolicy.LIMITS):
        return Difference(f"{label} exists with retention {_enum_value(have.retention)}, gamead needs "
                          f"{_enum_value(wanted.retention)}")
    if sorted(have.subjects or []) != sorted(wanted.subjects or []):
        return Difference(f"{label} exists with subjects {have.subjects}, gamead needs {wanted.subjects}")
    if wanted.storage is not None and _enum_value(have.storage) != _enum_value(wanted.storage):
        return Difference(f"{label} exists with {_enum_value(have.storage)} storage, gamead needs "
                          f"{_enum_value(wanted.storage)}")
    limits = tuple(k for k in STREAM_LIMITS
                   if getattr(wanted, k) not in (None, 0) and not _same(_enum_value(getattr(have, k)),
                                                                   _enum_value(getattr(wanted, k))))
    if wanted.metadata and any((have.metadata or {}).get(k) != v for k, v in wanted.metadata.items()):
        limits += ("metadata",)  # gamead's own keys (the server adds ``_nats.*`` keys of its own)
    return Difference(limits=limits)


def compare_consumer(stream: str, wanted: ConsumerConfig, have: ConsumerConfig) -> Difference:
    """Compare an existing consumer with gamead's: same filter subject, same ack policy, and a pull consumer
    (no ``deliver_subject``); the fields in :data:`CONSUMER_LIMITS` may differ and are listed."""
    name = wanted.durable_name or wanted.name
    if (have.filter_subject or None) != (wanted.filter_subject or None) or \
            _enum_value(have.ack_policy) != _enum_value(wanted.ack_policy):
        return Difference(
            f"consumer {stream}/{name} exists with filter {have.filter_subject!r} and ack policy "
            f"{_enum_value(have.ack_policy)}, gamead needs {wanted.filter_subject!r} and "
            f"{_enum_value(wanted.ack_policy)}; delete it (nats consumer rm {stream} {name})"
        )
    if have.deliver_subject:
        return Difference(f"consumer {stream}/{name} is a push consumer; gamead needs a pull consumer; delete "
                          f"it (nats consumer rm {stream} {name})")
    limits = tuple(k for k in CONSUMER_LIMITS
                   if getattr(wanted, k) is not None and not _same(getattr(have, k), getattr(wanted, k)))
    return Difference(limits=limits)


@dataclass(frozen=True)
class Snapshot:
    """What exists: stream name → config; (stream, consumer name) → config. ``calls``: API calls it took.
    ``held``: messages in each stream when the listing said (the work streams' are what a change of
    ``queue.partitions`` looks at, and with ``held_bytes`` the floor of a lowered limit)."""

    streams: Mapping[str, StreamConfig]
    consumers: Mapping[tuple[str, str], ConsumerConfig]
    calls: int = 0
    held: Mapping[str, int] = field(default_factory=dict)
    held_bytes: Mapping[str, int] = field(default_factory=dict)  #: bytes each stream stores (a lowering's floor)
    made_at: Mapping[str, datetime | None] = field(default_factory=dict)  #: when each stream was made

    def work_streams(self) -> dict[int, tuple[int | None, int]]:
        """Partition → (the ``queue.partitions`` its stream was made with, messages it holds), for every work
        stream that exists. A ``GAMEAD_ADS`` without the metadata is the single stream of an earlier version
        (1); another partition's stream without it: None (unknown)."""
        out: dict[int, tuple[int | None, int]] = {}
        for name, config in self.streams.items():
            p = names.partition_of_stream(name)
            if p is None:
                continue
            declared = (config.metadata or {}).get(names.PARTITIONS_METADATA)
            made_with = int(declared) if declared and declared.isdigit() else (1 if p == 0 else None)
            out[p] = (made_with, int(self.held.get(name, 0)))
        return out


State = Literal["ok", "missing", "incompatible", "limits"]


@dataclass(frozen=True)
class Verdict:
    wanted: Wanted
    state: State
    difference: Difference = field(default_factory=Difference)


def plan(wanted: tuple[Wanted, ...], snapshot: Snapshot) -> tuple[Verdict, ...]:
    """Compare every wanted object with the snapshot: ``missing``, ``incompatible``, ``limits`` (usable, some
    limits differ from the config) or ``ok``. A consumer whose stream is missing is missing too. Pure."""
    out: list[Verdict] = []
    for w in wanted:
        if w.kind == "consumer":
            assert isinstance(w.config, ConsumerConfig)
            have_c = snapshot.consumers.get((w.stream, w.name))
            if have_c is None:
                out.append(Verdict(w, "missing"))
                continue
            diff = compare_consumer(w.stream, w.config, have_c)
        else:
            have_s = snapshot.streams.get(w.stream)
            if have_s is None:
                out.append(Verdict(w, "missing"))
                continue
            diff = compare_stream(w.stream_config(), have_s)
            if w.kind == "bucket" and diff.incompatible:
                diff = Difference(f"bucket {w.name} (stream {w.stream}) is not a usable KV bucket: "
                                  f"{diff.incompatible}")
        state: State = "incompatible" if diff.incompatible else "limits" if diff.limits else "ok"
        out.append(Verdict(w, state, diff))
    return tuple(out)


