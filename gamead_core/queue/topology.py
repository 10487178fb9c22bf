"""Create the JetStream topology idempotently: the work stream, one durable pull consumer per level, the
ad-record KV bucket. Safe to run from every process at start-up, concurrently; fails clearly when something
already exists with a config gamead cannot use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
from gamead_core.config import GameadSettings, QueueSettings
from gamead_core.errors import TopologyError
from gamead_core.queue.connection import translate
from gamead_core.queue.dlq import advisory_stream_config, dlq_stream_config

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


def kv_config(qs: QueueSettings) -> KeyValueConfig:
    return KeyValueConfig(
        bucket=names.ADS_BUCKET,
        description="gamead ad records (revisioned; compare-and-set updates)",
        history=1,
        storage=StorageType.FILE,
        replicas=qs.replicas,
        direct=True,  # reads skip the JSON/base64 STREAM.MSG.GET path
    )


@dataclass(frozen=True)
class TopologyReport:
    """What :func:`ensure_topology` did, for the start-up log line."""

    created: tuple[str, ...]
    updated: tuple[str, ...]


async def _ensure_stream(js: JetStreamContext, wanted: StreamConfig, created: list[str], updated: list[str]) -> None:
    """Create the stream, or check it: retention and subjects must match; limits are updated in place."""
    try:
        info = await js.stream_info(wanted.name)  # type: ignore[arg-type]
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(wanted)
            created.append(f"stream {wanted.name}")
            return
        except nats.js.errors.BadRequestError as exc:  # lost a creation race: fall through to the check
            if exc.err_code != 10058:
                raise
            info = await js.stream_info(wanted.name)  # type: ignore[arg-type]
    have = info.config
    if have.retention != wanted.retention:
        raise TopologyError(
            f"stream {wanted.name} exists with retention {have.retention}, gamead needs {wanted.retention}; "
            f"delete it or point gamead at another NATS account"
        )
    if sorted(have.subjects or []) != sorted(wanted.subjects or []):
        raise TopologyError(
            f"stream {wanted.name} exists with subjects {have.subjects}, gamead needs {wanted.subjects}"
        )
    limits = ("max_msgs", "max_bytes", "max_age", "duplicate_window", "discard", "max_msgs_per_subject")
    if any(getattr(have, k) != getattr(wanted, k) for k in limits if getattr(wanted, k) is not None):
        await js.update_stream(wanted)
        updated.append(f"stream {wanted.name}")


async def _ensure_consumer(
    js: JetStreamContext, stream: str, wanted: ConsumerConfig, created: list[str], updated: list[str]
) -> None:
    name = wanted.durable_name or ""
    try:
        info = await js.consumer_info(stream, name)
    except nats.js.errors.NotFoundError:
        await js.add_consumer(stream, wanted)
        created.append(f"consumer {name}")
        return
    have = info.config
    if (have.filter_subject or None) != (wanted.filter_subject or None) or have.ack_policy != wanted.ack_policy:
        raise TopologyError(
            f"consumer {stream}/{name} exists with filter {have.filter_subject!r} and ack policy "
            f"{have.ack_policy}, gamead needs {wanted.filter_subject!r} and {wanted.ack_policy}; delete it "
            f"(nats consumer rm {stream} {name}) and restart"
        )
    if have.deliver_subject:
        raise TopologyError(f"consumer {stream}/{name} is a push consumer; gamead needs a pull consumer")
    if (have.ack_wait, have.max_deliver, have.max_ack_pending) != (
        wanted.ack_wait,
        wanted.max_deliver,
        wanted.max_ack_pending,
    ):
        await js.add_consumer(stream, wanted)  # CONSUMER.CREATE on an existing durable updates it
        updated.append(f"consumer {name}")


def mover_consumer_config() -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=names.ADVISORY_CONSUMER,
        name=names.ADVISORY_CONSUMER,
        description="unused since the level consumers have no delivery limit (kept for older deployments)",
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=30.0,
        max_deliver=-1,
        max_ack_pending=1000,
    )


async def ensure_topology(js: JetStreamContext, settings: GameadSettings) -> TopologyReport:
    """Create or check every stream, consumer and bucket gamead needs. Raises :class:`TopologyError`."""
    qs = settings.queue
    created: list[str] = []
    updated: list[str] = []
    try:
        await _ensure_stream(js, stream_config(qs), created, updated)
        await _ensure_stream(js, dlq_stream_config(settings.dlq, qs), created, updated)
        await _ensure_stream(js, advisory_stream_config(qs), created, updated)
        for level in names.LEVELS:
            await _ensure_consumer(js, names.ADS_STREAM, consumer_config(level, qs), created, updated)
        await _ensure_consumer(js, names.ADVISORY_STREAM, mover_consumer_config(), created, updated)
        try:
            await js.key_value(names.ADS_BUCKET)
        except nats.js.errors.BucketNotFoundError:
            await js.create_key_value(kv_config(qs))
            created.append(f"bucket {names.ADS_BUCKET}")
    except nats.js.errors.APIError as exc:
        raise TopologyError(f"JetStream refused the topology: {exc.description} (code {exc.err_code})") from exc
    except nats.errors.Error as exc:
        raise translate(exc) from exc
    if created or updated:
        log.info("jetstream topology ready", extra={"created_objects": created, "updated_objects": updated})
    return TopologyReport(tuple(created), tuple(updated))


async def topology_present(js: JetStreamContext) -> bool:
    """True when the work stream and every level consumer exist (for ``/readyz``)."""
    try:
        await js.stream_info(names.ADS_STREAM)
        for level in names.LEVELS:
            await js.consumer_info(names.ADS_STREAM, names.level_consumer(level))
    except (nats.errors.Error, TimeoutError):
        return False
    return True
