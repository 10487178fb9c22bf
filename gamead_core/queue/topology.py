"""The JetStream topology gamead needs, declared once; the pure rules that compare it with what exists; and
making it so, at start-up and while running.

Every object gamead creates (``essential`` ones are on the submit path: without them a node is not ready)::

    stream    GAMEAD_ADS            work queue, one subject per level                     essential
    stream    GAMEAD_DLQ            dead letters (limits retention)
    stream    GAMEAD_AUDIT          the audit trail of operator actions (limits retention)
    consumer  gamead-p1 … gamead-p5 one durable pull consumer per level, on GAMEAD_ADS
    bucket    gamead_ads            ad records (KV)                                       essential
    bucket    gamead_registry       heartbeats of API nodes and workers (memory, TTL)
    bucket    gamead_leases         leader leases (the autoscaler's)
    bucket    gamead_scaling        the autoscaler's shared state
    bucket    gamead_health         each API node's storage probe (gamead_core.queue.storage)
    bucket    gamead_jobs           operator jobs: documents and work lists (gamead_core.jobs)

(The ``GAMEAD_ADVISORIES`` stream and its ``gamead-dlq-mover`` consumer of earlier versions are no longer
created: see :data:`gamead_core.names.OBSOLETE_STREAMS`.)

* :func:`ensure_topology` (every worker at start-up): create what is missing, update compatible limit changes
  in place (a stream's ``max_msgs``, ``max_bytes``, ``max_age``, ``duplicate_window``, ``discard``,
  ``max_msgs_per_subject``, ``allow_msg_ttl``, ``allow_direct``; a consumer's ``ack_wait``, ``max_deliver``,
  ``max_ack_pending``) and raise :class:`TopologyError` with one clear line for an object that exists with a
  config gamead cannot use (retention, subjects or storage of a stream; filter, ack policy or push delivery of
  a consumer). Such an object is never overwritten.
* :func:`check_topology`: the same, returning a :class:`TopologyReport` instead of raising: the API node's
  start-up (which reports and carries on) and the watch of :mod:`gamead_core.queue.watch` (which only
  recreates what is missing; limits are the start-up's business, so nodes with different configs during a
  rolling deploy never flip a limit back and forth).

Reading what exists costs two JetStream API calls (:func:`read_topology`): ``STREAM.LIST`` (the config of
every stream, 256 a page) and ``CONSUMER.LIST`` of the work stream. An object absent from a
listing is confirmed with one ``STREAM.INFO``/``CONSUMER.INFO`` before it is created (a cluster may answer a
listing incompletely). The comparisons (:func:`compare_stream`, :func:`compare_consumer`, :func:`plan`) are
pure functions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import nats.js.errors
from nats.js import JetStreamContext
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
from gamead_core.errors import GameadError, QueueUnavailable, StorageFailed, TopologyError, TopologyMissing
from gamead_core.queue.connection import JS_STREAM_NAME_EXISTS, nats_boundary
from gamead_core.jobs.store import jobs_kv_config
from gamead_core.queue.dlq import dlq_stream_config
from gamead_core.registry import bucket_config as registry_bucket_config
from gamead_core.store.retention import records_stream_config

log = logging.getLogger(__name__)

#: Upper bound of unacknowledged ads per level across all workers (each worker holds ≤ its free slots).
MAX_ACK_PENDING = 20_000


def stream_config(qs: QueueSettings) -> StreamConfig:
    return StreamConfig(
        name=names.ADS_STREAM,
        description="gamead work queue: one subject per priority level",
        subjects=[names.ADS_SUBJECT_WILDCARD],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        max_msgs=qs.max_msgs,
        max_bytes=qs.max_bytes,
        duplicate_window=qs.duplicate_window,
        num_replicas=qs.replicas,
        # direct gets in batches: how `gamead doctor` lists the waiting ads (1 API call per 1,000 messages; a
        # work-queue stream refuses the ordered consumer a listing would otherwise use)
        allow_direct=True,
    )


def consumer_config(level: int, qs: QueueSettings) -> ConsumerConfig:
    """The durable pull consumer of one level. No delivery limit (``max_deliver = -1``): a delivery lost to
    our storage, a shutdown or another ad's crash is not an analysis attempt, so the analysis budget
    (``worker.max_attempts``) is kept in the ad's record instead (gamead_core.worker.budget), and JetStream
    never strands a message past its consumer."""
    name = names.level_consumer(level)
    return ConsumerConfig(
        durable_name=name,
        name=name,
        description=f"gamead workers, priority {level}",
        filter_subject=names.level_subject(level),
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
        discard=None,  # ADR-8 fixes these; nats-py's defaults are not what a bucket has
        duplicate_window=None,
    )


def wanted_topology(settings: GameadSettings) -> tuple[Wanted, ...]:
    """Every object gamead creates, in creation order (streams before their consumers)."""
    qs = settings.queue
    return (
        Wanted("stream", names.ADS_STREAM, names.ADS_STREAM, stream_config(qs), essential=True),
        Wanted("stream", names.DLQ_STREAM, names.DLQ_STREAM, dlq_stream_config(settings.dlq, qs)),
        Wanted("stream", names.AUDIT_STREAM, names.AUDIT_STREAM, audit_stream_config(settings.audit, qs)),
        *(Wanted("consumer", names.level_consumer(level), names.ADS_STREAM, consumer_config(level, qs))
          for level in names.LEVELS),
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
    )


# --- pure comparison ---------------------------------------------------------------------------------------

#: Stream fields gamead updates in place when they differ from its config (JetStream allows the change), and
#: the keys gamead sets in a stream's ``metadata``.
STREAM_LIMITS = ("max_msgs", "max_bytes", "max_age", "duplicate_window", "discard", "max_msgs_per_subject",
                 "allow_msg_ttl", "allow_direct")
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
    """What exists: stream name → config; (stream, consumer name) → config. ``calls``: API calls it took."""

    streams: Mapping[str, StreamConfig]
    consumers: Mapping[tuple[str, str], ConsumerConfig]
    calls: int = 0


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


# --- I/O -----------------------------------------------------------------------------------------------------

#: Streams whose consumers gamead lists.
_CONSUMER_STREAMS = (names.ADS_STREAM,)


async def read_topology(js: JetStreamContext) -> Snapshot:
    """List every stream and the consumers of the work stream (2 API calls, one more per extra page of
    256). Raises the gamead error of a failed call (``nats_boundary``)."""
    streams: dict[str, StreamConfig] = {}
    consumers: dict[tuple[str, str], ConsumerConfig] = {}
    calls = 0
    with nats_boundary():
        offset = 0
        while True:
            page = await js.streams_info_iterator(offset=offset)
            calls += 1
            infos = list(page)
            for info in infos:
                if info.config.name:
                    streams[info.config.name] = info.config
            offset += len(infos)
            if not infos or offset >= (page.total or 0):
                break
        for stream in _CONSUMER_STREAMS:
            if stream not in streams:
                continue
            offset = 0
            while True:
                page_c = await js.consumers_info(stream, offset=offset or None)
                calls += 1
                for ci in page_c:
                    consumers[(stream, ci.name)] = ci.config
                offset += len(page_c)
                if len(page_c) < 256:
                    break
    return Snapshot(streams, consumers, calls)


Outcome = Literal["ok", "created", "updated", "incompatible", "failed"]


@dataclass(frozen=True)
class ObjectState:
    """What became of one object in a check."""

    wanted: Wanted
    outcome: Outcome
    detail: str | None = None  #: the incompatibility, the failure, or the limits updated
    error: GameadError | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        return self.wanted.label

    def as_dict(self) -> dict[str, object]:
        return {"object": self.label, "kind": self.wanted.kind, "name": self.wanted.name,
                "essential": self.wanted.essential, "state": self.outcome, "detail": self.detail}


@dataclass(frozen=True)
class TopologyReport:
    """Per object, what a check found and did; ``calls`` = JetStream API calls it made."""

    objects: tuple[ObjectState, ...]
    calls: int = 0

    @property
    def created(self) -> tuple[str, ...]:
        return tuple(o.label for o in self.objects if o.outcome == "created")

    @property
    def updated(self) -> tuple[str, ...]:
        return tuple(o.label for o in self.objects if o.outcome == "updated")

    @property
    def problems(self) -> tuple[ObjectState, ...]:
        """Objects gamead cannot use as they are: incompatible, or missing and not created."""
        return tuple(o for o in self.objects if o.outcome in ("incompatible", "failed"))

    @property
    def essential_ok(self) -> bool:
        """No problem with an object on the submit path (the work stream, the ad bucket)."""
        return not any(o.wanted.essential for o in self.problems)

    @property
    def essential_incompatible(self) -> tuple[ObjectState, ...]:
        return tuple(o for o in self.problems if o.wanted.essential and o.outcome == "incompatible")


async def _exists(js: JetStreamContext, w: Wanted) -> StreamConfig | ConsumerConfig | None:
    """Confirm one object a listing did not show (one INFO call); None if it really is missing."""
    try:
        if w.kind == "consumer":
            return (await js.consumer_info(w.stream, w.name)).config
        return (await js.stream_info(w.stream)).config
    except nats.js.errors.NotFoundError:
        return None


async def _create(js: JetStreamContext, w: Wanted) -> None:
    if w.kind == "consumer":
        assert isinstance(w.config, ConsumerConfig)
        await js.add_consumer(w.stream, w.config)
    elif isinstance(w.config, KeyValueConfig):  # a bucket as nats-py builds it (ADR-8)
        await js.create_key_value(w.config)
    else:  # a stream, or a bucket given as its full stream config (KV conventions plus gamead's own)
        assert isinstance(w.config, StreamConfig)
        await js.add_stream(w.config)


async def _update_limits(js: JetStreamContext, w: Wanted, have: StreamConfig | ConsumerConfig,
                         limits: tuple[str, ...]) -> None:
    """Change only ``limits`` of the existing object, keeping every other field as it is."""
    target = w.stream_config() if w.kind != "consumer" else w.config
    values = {k: getattr(target, k) for k in limits}
    if "metadata" in values:  # add or change gamead's keys, keep the server's
        values["metadata"] = {**(getattr(have, "metadata", None) or {}), **(values["metadata"] or {})}
    changed = have.evolve(**values)
    if w.kind == "consumer":
        await js.add_consumer(w.stream, changed)  # CONSUMER.CREATE on an existing durable updates it
    else:
        await js.update_stream(changed)


async def _settle(js: JetStreamContext, v: Verdict, *, create: bool, update: bool,
                  have: StreamConfig | ConsumerConfig | None) -> ObjectState:
    w = v.wanted
    if v.state == "missing":
        have = await _exists(js, w)
        if have is not None:  # the listing was incomplete: judge what is there
            diff = (compare_consumer(w.stream, w.config, have) if isinstance(have, ConsumerConfig)  # type: ignore[arg-type]
                    else compare_stream(w.stream_config(), have))
            v = Verdict(w, "incompatible" if diff.incompatible else "limits" if diff.limits else "ok", diff)
        elif not create:
            return ObjectState(w, "failed", "missing")
        else:
            try:
                await _create(js, w)
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code != JS_STREAM_NAME_EXISTS:
                    raise
                # lost a creation race to a node with another config: judge what won
                have = await _exists(js, w)
                if have is None:
                    raise
                diff = compare_stream(w.stream_config(), have)  # type: ignore[arg-type]
                v = Verdict(w, "incompatible" if diff.incompatible else "limits" if diff.limits else "ok", diff)
            else:
                return ObjectState(w, "created")
    if v.state == "incompatible":
        return ObjectState(w, "incompatible", v.difference.incompatible)
    if v.state == "limits" and update:
        if have is None:
            have = await _exists(js, w)
        if have is not None:
            await _update_limits(js, w, have, v.difference.limits)
            return ObjectState(w, "updated", ", ".join(v.difference.limits))
    return ObjectState(w, "ok")


async def check_topology(js: JetStreamContext, settings: GameadSettings, *, create: bool = True,
                         update: bool = False, snapshot: Snapshot | None = None) -> TopologyReport:
    """Compare every object with gamead's config and make it so: create the missing ones (``create``), update
    compatible limit changes (``update``). Never raises for an incompatible object (it is reported as such);
    an object JetStream refuses to create is reported ``failed`` with the gamead error. Raises the gamead
    error of a failed listing (NATS unreachable and the like)."""
    snap = snapshot or await read_topology(js)
    wanted = wanted_topology(settings)
    calls = snap.calls
    states: list[ObjectState] = []
    for verdict in plan(wanted, snap):
        w = verdict.wanted
        have = (snap.consumers.get((w.stream, w.name)) if w.kind == "consumer" else snap.streams.get(w.stream))
        if verdict.state == "ok" or (verdict.state == "limits" and not update):
            states.append(ObjectState(w, "ok"))
            continue
        try:
            with nats_boundary():
                states.append(await _settle(js, verdict, create=create, update=update, have=have))
        except GameadError as err:
            states.append(ObjectState(w, "failed", err.message, err))
        calls += 2 if verdict.state == "missing" else 1
    return TopologyReport(tuple(states), calls)


async def ensure_topology(js: JetStreamContext, settings: GameadSettings, *, retry_for: float = 15.0) -> TopologyReport:
    """Create or check every stream, consumer and bucket gamead needs (start-up of a worker or CLI).

    Creates what is missing and updates compatible limit changes in place. JetStream not answering (a cluster
    electing a leader, a server restarting) is retried for up to ``retry_for`` seconds. Raises
    :class:`TopologyError` (one line, naming the object and the fix) if an object exists with a config gamead
    cannot use, :class:`~gamead_core.errors.StorageFailed` if JetStream has no room for it, or
    :class:`~gamead_core.errors.QueueUnavailable` if JetStream still does not answer after ``retry_for``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry_for
    while True:
        try:
            report = await _ensure_once(js, settings)
        except QueueUnavailable as exc:
            if isinstance(exc, StorageFailed) or loop.time() >= deadline:
                raise
            log.warning("JetStream did not answer while checking the topology (%s); retrying", exc.message)
            await asyncio.sleep(0.5)
            continue
        if report.created or report.updated:
            log.info("jetstream topology ready",
                     extra={"created_objects": list(report.created), "updated_objects": list(report.updated)})
        return report


async def _ensure_once(js: JetStreamContext, settings: GameadSettings) -> TopologyReport:
    report = await check_topology(js, settings, create=True, update=True)
    incompatible = [o for o in report.objects if o.outcome == "incompatible"]
    if incompatible:
        more = f" (and {len(incompatible) - 1} more)" if len(incompatible) > 1 else ""
        raise TopologyError(f"{incompatible[0].detail}; delete it or point gamead at another NATS account{more}")
    failed = [o for o in report.objects if o.outcome == "failed"]
    if failed:
        first = failed[0]
        if first.error is not None and not isinstance(first.error, TopologyMissing):
            raise first.error
        raise TopologyError(f"JetStream refused to create {first.label}: {first.detail}")
    return report
