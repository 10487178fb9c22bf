"""A change of ``queue.partitions``: never made by a start on its own, only as an explicit operator act.

The rule (:func:`gamead_core.queue.partitions.settle_rule` decides, pure): the work streams that exist
(``GAMEAD_ADS``, ``GAMEAD_ADS_1`` …, each with the setting it was made with in its metadata) must fit
``queue.partitions``. When they do not — more streams, fewer, or made with another setting — a start
(``gamead serve``, ``gamead worker``, ``gamead up``, the API's topology check) is refused with one line
(:class:`~gamead_core.errors.PartitionsChanged`, exit code 5) and touches nothing: no stream deleted, no limits or
metadata rewritten. A stray process started with the default setting next to a running queue is the case this
guards against: its setting says nothing about what the operator wants.

The change is made only when the start also says ``queue.repartition: true`` (the operator's word that every
other node is stopped and the queue drained), only if every work stream is empty, and only while the registry lists
no live node on another setting (below). Then each stream of a
partition the setting no longer has is sealed first (JetStream's ``sealed``: the stream refuses new messages and
cannot be unsealed), their message counts read again, the kept streams' metadata set to the new setting, and
each deleted only then, its count still 0 — so an ad published between the first look and the delete cannot be
deleted with it (a sealed stream that did get an ad is left as it is, sealed, and the start refused), and a node
left on the old setting never takes a deleted partition for a missing one to recreate (:func:`_drop_partitions`).
The topology check then rewrites the kept streams' limits and creates the new ones. ``gamead doctor`` reports a
mismatch. A refusal is final wherever a start meets it (the API's pre-check, its link set-up, a worker's topology
check: exit 5), never retried until the queue drains.

Before anything is sealed, the registry is read (:mod:`gamead_core.queue.repartition_guard`): while any live node
(heartbeat younger than ``registry.ttl``) runs on a setting other than the new one, the start is refused, nothing
touched (attack42b F1: one start next to an idle fleet of 3 APIs and 3 workers left every old API answering 503
``topology_changed`` and every old worker exiting 5 within 20 s). Nodes on the new setting do not block (a node of
the new setting may rightly be running: attack28b). The check and the seal are two steps, and a node frozen past
``registry.ttl`` has no entry: a node that still runs the old setting is guarded against as follows. An ad an old
node publishes into a removed partition after
the first look is refused by the sealed stream (that submit fails, 503) or, landed before the seal, counted by the
second look (the start refused, the stream left sealed with it) or, unanswered (in flight as the stream was
deleted), published again by that node by the queue's live partitions (:mod:`gamead_core.unsettled`,
:func:`~gamead_core.queue.partitions.settle_by`; repart38); one published into a kept partition stays there
and is read by the new setting's workers. The old nodes themselves notice within ``api.topology_check_interval``
(API: unready, 503 ``topology_changed``) or 3-6 × that (workers: drain, exit 5).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.errors import PartitionsChanged
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.partitions import PartitionChange, settle_rule
from gamead_core.queue.repartition_guard import refuse_live_old_nodes
from gamead_core.queue.write_check import check_subject

log = logging.getLogger("gamead_core.queue.topology")


async def settle_partitions(js: JetStreamContext, change: PartitionChange | None, *, update: bool,
                            settings: GameadSettings) -> None:
    """Nothing when ``change`` is None. Raises :class:`PartitionsChanged` (one line: what exists, what is set,
    the fix) and touches nothing unless :func:`settle_rule` says ``"change"`` (``settings.queue.repartition``, a
    start-up check, the queue drained) and no live node runs on another setting
    (:func:`~gamead_core.queue.repartition_guard.refuse_live_old_nodes`, which refuses too when the registry cannot
    be read); then deletes the streams of removed partitions (sealed, then checked empty; the caller rewrites the
    kept ones and creates the new ones). NATS errors as the gamead error tree."""
    repartition = settings.queue.repartition
    if change is not None and change.held and repartition and update:  # a write check's message is no ad
        change = replace(change, held=await _held_without_checks(js, change.found))
    else:
        change = await ads_held(js, change)
    decision = settle_rule(change, repartition=repartition, update=update)
    if decision == "none" or change is None:
        return
    if decision == "refuse":
        raise PartitionsChanged(change.describe(), change=change)
    await refuse_live_old_nodes(js, settings, change.setting)  # before any seal (attack42b F1)
    await _drop_partitions(js, change)


async def ads_held(js: JetStreamContext, change: PartitionChange | None) -> PartitionChange | None:
    """``change`` with ``held`` counting ads only: the messages of each work stream of ``change.found`` less
    those on its storage write check subject (:mod:`gamead_core.queue.write_check`; a check message stored late
    is no ad). Read-only, and only when ``change`` holds messages (one ``STREAM.INFO`` per work stream, at a
    refused change: no hot path). ``None`` stays ``None``. NATS errors as the gamead error tree."""
    if change is None or not change.held:
        return change
    held = 0
    for p in change.found:
        with nats_boundary():
            try:
                info = await js.stream_info(names.work_stream(p), subjects_filter=check_subject(p))
            except nats.js.errors.NotFoundError:  # deleted since the listing
                continue
        held += int(info.state.messages or 0) - sum((info.state.subjects or {}).values())
    return replace(change, held=max(held, 0))


async def _held_without_checks(js: JetStreamContext, found: tuple[int, ...]) -> int:
    """Messages in the work streams of ``found`` once their storage write check subjects are purged (a check
    message stored late, :mod:`gamead_core.queue.write_check`, never holds up a change). NATS errors as the
    gamead error tree."""
    held = 0
    for p in found:
        stream = names.work_stream(p)
        with nats_boundary():
            with contextlib.suppress(nats.js.errors.APIError):  # a sealed stream refuses a purge
                await js.purge_stream(stream, subject=check_subject(p))
            held += int((await js.stream_info(stream)).state.messages or 0)
    return held


async def _drop_partitions(js: JetStreamContext, change: PartitionChange) -> None:
    """Delete the (empty) work streams of the partitions ``change`` removes: each looked at (one holding an ad
    refuses the change, nothing touched), each sealed, all re-read (one that got an ad since refuses it: left sealed
    with its ads, the empty ones deleted, no kept stream touched), then the kept streams' metadata set to the new
    setting, and only then the removed ones deleted. In that order because a node still on the old setting
    heals its topology (:mod:`gamead_core.queue.watch`): a removed stream deleted while the kept ones still said the
    old setting was a missing partition to it, recreated within its check interval (repart38: 0.35 s at 0.5 s),
    leaving work streams made with two settings that every node refuses; once a kept stream says the new setting,
    the old node sees the change instead (``topology_changed``) and creates nothing."""
    removed: list[tuple[int, str, StreamConfig]] = []
    for p in change.removed:  # every first look before any seal: an ad anywhere refuses it, nothing touched
        stream = names.work_stream(p)
        with nats_boundary():
            try:
                info = await js.stream_info(stream)
            except nats.js.errors.NotFoundError:
                continue
        if int(info.state.messages or 0):
            held_now = replace(change, held=int(info.state.messages))
            raise PartitionsChanged(held_now.describe(), change=held_now)
        removed.append((p, stream, info.config))
    for _, _, config in removed:
        if not config.sealed:  # no new message can land in it from here on
            with nats_boundary():
                await js.update_stream(config.evolve(sealed=True))
    got: dict[str, int] = {}
    for _, stream, _ in removed:
        with nats_boundary():
            got[stream] = int((await js.stream_info(stream)).state.messages or 0)
    if held := sum(got.values()):  # the empty ones go as before; the old setting stays the queue's
        for stream in (s for s, n in got.items() if not n):
            with nats_boundary():
                await js.delete_stream(stream)
        raise PartitionsChanged(
            f"{', '.join(s for s, n in got.items() if n)} got {held} ad(s) while queue.repartition was changing the "
            f"partitions (some node is still running): left sealed, with its ads, and nothing else was changed; stop "
            f"every node, then start with queue.partitions {max(m or 0 for m in change.made_with)} to drain it "
            f"(README: Partitions)", change=replace(change, held=held))
    await _mark_kept(js, change)
    for p, stream, _ in removed:
        with nats_boundary():
            await js.delete_stream(stream)
        log.warning("queue.repartition: deleted the empty (sealed) work stream %s of partition %d; "
                    "queue.partitions is now %d", stream, p, change.setting,
                    extra={"object_name": stream, "action": "deleted"})
    log.warning("queue.repartition: the work streams were %s (queue.partitions %s), now %d partition(s)",
                ", ".join(names.work_stream(p) for p in change.found),
                "/".join(sorted({str(m) for m in change.made_with if m is not None})) or "unknown", change.setting)


async def _mark_kept(js: JetStreamContext, change: PartitionChange) -> None:
    """Set ``gamead_partitions`` of each kept work stream (a partition below the new setting) to ``change.setting``,
    its other limits left to the topology check that follows."""
    for p in change.found:
        if p >= change.setting:
            continue
        with nats_boundary():
            try:
                info = await js.stream_info(names.work_stream(p))
            except nats.js.errors.NotFoundError:
                continue
            metadata = {**(info.config.metadata or {}), names.PARTITIONS_METADATA: str(change.setting)}
            if metadata != (info.config.metadata or {}):
                await js.update_stream(info.config.evolve(metadata=metadata))


__all__ = ["ads_held", "settle_partitions"]
