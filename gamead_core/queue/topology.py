"""The JetStream topology gamead needs, declared once; the pure rules that compare it with what exists; and
making it so, at start-up and while running.

Every object gamead creates (``essential`` ones are on the submit path: without them a node is not ready)::

    stream    GAMEAD_ADS            work queue, one subject per level                     essential
              GAMEAD_ADS_1 …        the other work-queue partitions (``queue.partitions`` > 1)  essential
    stream    GAMEAD_DLQ            dead letters (limits retention)
    stream    GAMEAD_AUDIT          the audit trail of operator actions (limits retention)
    consumer  gamead-p1 … gamead-p5 one durable pull consumer per level, on GAMEAD_ADS
              gamead-<p>-p1 …       the same on partition p's stream
    bucket    gamead_ads            ad records (KV)                                       essential
    bucket    gamead_registry       heartbeats of API nodes and workers (memory, TTL)
    bucket    gamead_leases         leader leases (the autoscaler's)
    bucket    gamead_scaling        the autoscaler's shared state
    bucket    gamead_health         each API node's storage probe (gamead_core.queue.storage)
    bucket    gamead_jobs           operator jobs: documents and work lists (gamead_core.jobs)
    bucket    gamead_stops          one note per node process that stopped cleanly, a day (gamead_core.registry.stops)

(The ``GAMEAD_ADVISORIES`` stream and its ``gamead-dlq-mover`` consumer of earlier versions are no longer
created: see :data:`gamead_core.names.OBSOLETE_STREAMS`.)

* :func:`ensure_topology` (every worker at start-up): create what is missing, update compatible limit changes
  in place (a stream's ``max_msgs``, ``max_bytes``, ``max_age``, ``duplicate_window``, ``discard``,
  ``max_msgs_per_subject``, ``allow_msg_ttl``, ``allow_direct``, ``allow_atomic``; a consumer's ``ack_wait``,
  ``max_deliver``, ``max_ack_pending``) and raise :class:`TopologyError` with one clear line for an object that
  exists with a config gamead cannot use (retention, subjects or storage of a stream; filter, ack policy or push
  delivery of a consumer). Such an object is never overwritten.
* :func:`check_topology`: the same, returning a :class:`TopologyReport` instead of raising: the API node's
  start-up (which reports and carries on) and the watch of :mod:`gamead_core.queue.watch` (which only
  recreates what is missing; limits are the start-up's business, so nodes with different configs during a
  rolling deploy never flip a limit back and forth).

The limits a node's settings give the shared objects (the work streams' ``max_msgs``/``max_bytes``/
``duplicate_window``, the level consumers' ``ack_wait``, the DLQ's, audit stream's, record, registry and jobs
buckets' counts, sizes and ages: :data:`.limit_rule.SETTINGS`) are the fleet's: a start raises them to its own,
never lowers them unless ``queue.lower_limits`` says so (and never a count or size below what a stream holds); it
keeps the live value and says so in one WARNING (:data:`DRIFT_WARNING`), and every check reports what differs
(:attr:`TopologyReport.drift`; :mod:`gamead_core.queue.limit_rule`).

A start whose ``queue.partitions`` differs from the work streams is refused and touches nothing; the change is
made only by an explicit ``queue.repartition: true`` on a drained queue (:mod:`gamead_core.queue.repartition`).

Reading what exists costs two JetStream API calls (:func:`read_topology`): ``STREAM.LIST`` (the config and creation
of every stream, 256 a page) and ``CONSUMER.LIST`` of each work stream (one per partition). An object absent from a
listing is confirmed with one ``STREAM.INFO``/``CONSUMER.INFO`` before it is created (a cluster may answer a listing
incompletely). The comparisons (:func:`compare_stream`, :func:`plan`…) are pure: :mod:`.topology_plan`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, KeyValueConfig, StreamConfig

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.errors import GameadError, QueueUnavailable, StorageFailed, TopologyError, TopologyMissing
from gamead_core.queue import limit_rule
from gamead_core.queue.atomic import server_takes_atomic
from gamead_core.queue.connection import JS_STREAM_NAME_EXISTS, nats_boundary
from gamead_core.queue.partitions import PartitionChange, partition_change
from gamead_core.queue.repartition import settle_partitions
from gamead_core.queue.room_asked import room_asked
from gamead_core.queue.topology_plan import (  # the pure half, re-exported for existing callers
    CONSUMER_LIMITS,
    HEALTH_TTL,
    MAX_ACK_PENDING,
    STREAM_LIMITS,
    Difference,
    Snapshot,
    Verdict,
    Wanted,
    compare_consumer,
    compare_stream,
    consumer_config,
    health_bucket_config,
    kv_config,
    kv_stream_config,
    limit_values,
    plain_bucket_config,
    plan,
    stream_config,
    wanted_topology,
)
from gamead_core.queue.topology_report import ObjectState, Outcome, TopologyReport

__all__ = [  # the pure half re-exported, and the I/O half's own names
    "CONSUMER_LIMITS",
    "HEALTH_TTL",
    "MAX_ACK_PENDING",
    "STREAM_LIMITS",
    "Difference",
    "PartitionChange",
    "Snapshot",
    "Verdict",
    "Wanted",
    "compare_consumer",
    "compare_stream",
    "consumer_config",
    "health_bucket_config",
    "kv_config",
    "kv_stream_config",
    "partition_change",
    "plain_bucket_config",
    "plan",
    "stream_config",
    "wanted_topology",
    "ObjectState", "Outcome", "TopologyReport",
    "check_topology",
    "ensure_topology",
    "is_missing",
    "limit_differs",
    "read_topology",
]

log = logging.getLogger(__name__)

#: the start's one WARNING when this node's queue settings differ from the live topology (:mod:`.limit_rule`)
DRIFT_WARNING = ("this node's queue settings differ from the live topology, which the fleet runs with (the live "
                 "values stay): %s")

# --- I/O -----------------------------------------------------------------------------------------------------

#: Streams whose consumers gamead lists.
_CONSUMER_STREAMS = (names.ADS_STREAM,)


async def read_topology(js: JetStreamContext) -> Snapshot:
    """List every stream and the consumers of every work stream (2 API calls, one more per other partition
    and per extra page of 256). Raises the gamead error of a failed call (``nats_boundary``)."""
    streams: dict[str, StreamConfig] = {}
    held: dict[str, int] = {}
    held_bytes: dict[str, int] = {}
    created: dict[str, datetime | None] = {}
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
                    held[info.config.name] = int(info.state.messages or 0) if info.state else 0
                    held_bytes[info.config.name] = int(info.state.bytes or 0) if info.state else 0
                    created[info.config.name] = info.created
            offset += len(infos)
            if not infos or offset >= (page.total or 0):
                break
        for stream in (*_CONSUMER_STREAMS, *sorted(s for s in streams if names.partition_of_stream(s))):
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
    return Snapshot(streams, consumers, calls, held, held_bytes, created)


async def _exists(js: JetStreamContext, w: Wanted) -> StreamConfig | ConsumerConfig | None:
    """Confirm one object a listing did not show (one INFO call); None if it really is missing."""
    try:
        if w.kind == "consumer":
            return (await js.consumer_info(w.stream, w.name)).config
        return (await js.stream_info(w.stream)).config
    except nats.js.errors.NotFoundError:
        return None


async def is_missing(js: JetStreamContext, w: Wanted) -> bool:
    """True if ``w`` really is missing (one INFO call: a cluster may list incompletely). Raises the gamead error
    of a failed call."""
    with nats_boundary():
        return await _exists(js, w) is None


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
    changed = have.evolve(**limit_values(w.stream_config() if w.kind != "consumer" else w.config, have, limits))
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
    compatible limit changes (``update``; a guarded lowering only as :mod:`.limit_rule` allows; every guarded
    difference left is in the report's ``drift``). Never raises for an incompatible object (it is reported as such);
    an object JetStream refuses to create is reported ``failed`` with the gamead error. Raises the gamead
    error of a failed listing (NATS unreachable and the like), and :class:`PartitionsChanged` (nothing touched)
    when the work streams do not fit ``queue.partitions``, unless ``queue.repartition`` asks for the change at
    start-up (``update``) on a drained queue (:mod:`gamead_core.queue.repartition`)."""
    snap = snapshot or await read_topology(js)
    await settle_partitions(js, partition_change(settings.queue.partitions, snap.work_streams()), update=update,
                            settings=settings)
    wanted = wanted_topology(settings, atomic=server_takes_atomic(js))  # allow_atomic: 2.12.1 and later
    calls = snap.calls
    states: list[ObjectState] = []
    for verdict in plan(wanted, snap):
        w = verdict.wanted
        have = (snap.consumers.get((w.stream, w.name)) if w.kind == "consumer" else snap.streams.get(w.stream))
        verdict, drift = _guard(verdict, have, settings, snap, update=update)
        if verdict.state == "ok" or (verdict.state == "limits" and not update):
            states.append(ObjectState(w, "ok", drift=drift))
            continue
        try:
            with nats_boundary():
                states.append(replace(await _settle(js, verdict, create=create, update=update, have=have),
                                      drift=drift))
        except GameadError as err:
            if isinstance(err, StorageFailed) and verdict.state == "missing":  # no room to create it: say its size
                err = StorageFailed(f"{err.message}; {room_asked(w, wanted)}")
            states.append(ObjectState(w, "failed", err.message, err))
        calls += 2 if verdict.state == "missing" else 1
    return TopologyReport(tuple(states), calls, snap.made_at)


def _guard(verdict: Verdict, have: StreamConfig | ConsumerConfig | None, settings: GameadSettings, snap: Snapshot,
           *, update: bool) -> tuple[Verdict, tuple[limit_rule.Drift, ...]]:
    """The limits a check may write on a shared object (a work stream, a level consumer, the DLQ, audit, record,
    registry or jobs store: :mod:`.limit_rule`; a start raises, lowers only with ``queue.lower_limits``, never a
    count or size below what a stream holds), and the differences left. Pure."""
    w, diff = verdict.wanted, verdict.difference
    if verdict.state != "limits" or have is None or not limit_rule.guarded(w.kind, w.name):
        return verdict, ()
    own = w.config if w.kind == "consumer" else w.stream_config()
    if not update:
        return verdict, limit_rule.drift(w.label, diff.limits, have, own)
    apply, kept = limit_rule.split(w.label, diff.limits, have, own, lower=settings.queue.lower_limits,
                                   held_msgs=int(snap.held.get(w.stream, 0)),
                                   held_bytes=int(snap.held_bytes.get(w.stream, 0)))
    return replace(verdict, state="limits" if apply else "ok", difference=replace(diff, limits=apply)), kept


def limit_differs(verdict: Verdict, snap: Snapshot) -> str:
    """``gamead doctor``'s note on a ``limits`` verdict: each guarded limit, live against this node's
    (:func:`.limit_rule.drift_line`), then the other differing fields by name. Pure."""
    w = verdict.wanted
    have = snap.consumers.get((w.stream, w.name)) if w.kind == "consumer" else snap.streams.get(w.stream)
    own = w.config if w.kind == "consumer" else w.stream_config()
    guarded = limit_rule.fields_of(w.kind, w.name)
    lines = [d.line() for d in limit_rule.drift(w.label, verdict.difference.limits, have, own)]
    rest = [f for f in verdict.difference.limits if f not in guarded]
    return "; ".join([*lines, *(["differs: " + ", ".join(rest)] if rest else [])])


async def ensure_topology(js: JetStreamContext, settings: GameadSettings, *, retry_for: float = 15.0) -> TopologyReport:
    """Create or check every stream, consumer and bucket gamead needs (start-up of a worker or CLI).

    Creates what is missing and updates compatible limit changes in place, but lowers the fleet's shared limits
    only with ``queue.lower_limits`` (:mod:`.limit_rule`; what it keeps is said in one WARNING). JetStream not
    answering (a cluster electing a leader, a server restarting) is retried for up to ``retry_for`` seconds. Raises
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
        if lines := report.drift_lines(why=True):
            log.warning(DRIFT_WARNING, "; ".join(lines), extra={"problem": "topology_differs", "differs": list(lines)})
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
