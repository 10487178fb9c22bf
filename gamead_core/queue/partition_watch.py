"""A running worker's look at ``queue.partitions``: the work streams repartitioned under it (README, "Partitions").

A worker with the old setting reads only the partitions it knows and would put an ad it re-publishes into
partition ``crc32(id) mod`` its own setting. So it looks every 3-6 × ``api.topology_check_interval`` seconds (15-30
s at the default 5 s, drawn afresh each time so that a fleet's looks spread out): a cheap look of at most two
``STREAM.INFO`` calls (:func:`suspect_partitions`: the stream of partition N, its own ``queue.partitions``, exists:
more partitions; the stream of partition N − 1 is missing or was made with another setting: fewer), whatever the
size of the fleet or the topology. Only on such a suspicion does it read the whole topology
(:func:`~gamead_core.queue.topology.read_topology`) for the change and its message. Once the work streams no longer
fit, the worker logs it, stops pulling, drains what it holds and exits with code 5
(:class:`~gamead_core.errors.PartitionsChanged`). Exiting rather than idling: its supervisor (Kubernetes,
``gamead up``) restarts it, which picks up a corrected config, and a config left stale is then refused at start
with the same line, visibly (a crash loop, a console line), instead of a live worker that counts as capacity and
pulls nothing. The API nodes do the same from their topology watch (:mod:`gamead_core.queue.watch`). A look that
fails unexpectedly (a bug, not NATS) is logged and the watch goes on, its next look backed off (at most 8 × the
interval).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import nats.js.errors
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.errors import ConfigError, GameadError, PartitionsChanged
from gamead_core.queue.closed import NatsClosed
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.partitions import PartitionChange, partition_change
from gamead_core.queue.topology import read_topology
from gamead_core.stop_bound import ended

log = logging.getLogger(__name__)


#: a worker looks every ``api.topology_check_interval`` × a factor drawn from this range (15-30 s at 5 s)
WORKER_INTERVAL_FACTOR = (3.0, 6.0)
#: at most this many intervals between looks after looks that failed unexpectedly
MAX_BACKOFF = 8


def worker_interval(base: float, draw: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds until a worker's next look: ``base`` (``api.topology_check_interval``, s) × a factor drawn from
    :data:`WORKER_INTERVAL_FACTOR` by ``draw`` (jitter, so a fleet started together does not look together)."""
    return base * draw(*WORKER_INTERVAL_FACTOR)


async def _stream_made_with(js: JetStreamContext, partition: int) -> tuple[bool, int | None]:
    """(whether the work stream of ``partition`` exists, the ``queue.partitions`` its metadata says it was made
    with, or None): one ``STREAM.INFO`` call. Raises the gamead error of a failed call."""
    with nats_boundary():
        try:
            info = await js.stream_info(names.work_stream(partition))
        except nats.js.errors.NotFoundError:
            return False, None
    declared = (info.config.metadata or {}).get(names.PARTITIONS_METADATA)
    return True, int(declared) if declared and declared.isdigit() else (1 if partition == 0 else None)


async def queue_partitions(js: JetStreamContext, setting: int) -> int:
    """The partitions the work queue has, whatever this node's ``queue.partitions`` (``setting``): the count
    ``GAMEAD_ADS``'s metadata says it was made with (1 without it), or ``setting`` while it does not exist. For a
    read-out over every partition (``/v1/levels``), so a node left on an old setting still shows every waiting ad
    (attack28b F3). One ``STREAM.INFO`` call; raises the gamead error of a failed call."""
    exists, made = await _stream_made_with(js, 0)
    return made if exists and made is not None else setting


async def suspect_partitions(js: JetStreamContext, partitions: int) -> bool:
    """Whether the work streams may no longer fit ``queue.partitions`` = ``partitions``, in at most two
    ``STREAM.INFO`` calls: the stream of partition ``partitions`` exists (more partitions), or that of partition
    ``partitions`` − 1 is missing (fewer; or deleted, which the full read then tells apart) or was made with another
    setting. False means they fit as far as a worker needs to know. Raises the gamead error of a failed call."""
    if partitions < names.MAX_PARTITIONS and (await _stream_made_with(js, partitions))[0]:
        return True
    exists, made_with = await _stream_made_with(js, partitions - 1)
    return not exists or made_with != partitions


async def look_at_partitions(js: JetStreamContext, partitions: int) -> PartitionChange | None:
    """One worker look: :func:`suspect_partitions` (≤ 2 calls) and, only on a suspicion, the whole topology
    (:func:`~gamead_core.queue.topology.read_topology`) for the change. None while they fit. Raises the gamead
    error of a failed call."""
    if not await suspect_partitions(js, partitions):
        return None
    return partition_change(partitions, (await read_topology(js)).work_streams())


async def watch_partitions(js: JetStreamContext, settings: GameadSettings, stop: asyncio.Event, *,
                           interval: Callable[[], float]) -> PartitionChange | None:
    """Look (:func:`look_at_partitions`) every ``interval()`` seconds until ``stop`` is set (then None) or the
    work streams no longer fit ``queue.partitions`` (then the change). A look NATS does not answer is skipped (the
    next one tries again); one that fails otherwise is logged and the next waits up to :data:`MAX_BACKOFF` times
    longer. Never raises."""
    failures = 0
    while True:
        try:
            await asyncio.wait_for(stop.wait(), interval() * min(2 ** failures, MAX_BACKOFF))
            return None
        except asyncio.TimeoutError:
            pass
        try:
            change = await look_at_partitions(js, settings.queue.partitions)
        except GameadError as exc:
            log.debug("partitions look skipped: %s", exc.message)
            continue
        except Exception:  # noqa: BLE001 - the watch must outlive any one bad look
            failures += 1
            log.exception("partitions look failed; the watch goes on")
            continue
        failures = 0
        if change is not None:
            return change


__all__ = ["look_at_partitions", "queue_partitions", "stop_if_repartitioned", "suspect_partitions", "watch_partitions",
           "watch_result", "worker_interval"]


async def stop_if_repartitioned(js: JetStreamContext, settings: GameadSettings, stop: asyncio.Event, *,
                                interval: Callable[[], float] | None = None) -> None:
    """:func:`watch_partitions` (every :func:`worker_interval` of ``api.topology_check_interval`` unless
    ``interval``); once the work streams no longer fit, log it as an ERROR, set ``stop`` (the worker stops pulling
    and drains) and raise :class:`~gamead_core.errors.PartitionsChanged` (exit code 5) with the one line of
    :meth:`~gamead_core.queue.partitions.PartitionChange.stale_node`. Returns None once ``stop`` is set otherwise."""
    base = settings.api.topology_check_interval
    change = await watch_partitions(js, settings, stop, interval=interval or (lambda: worker_interval(base)))
    if change is None:
        return
    log.error("this worker stops pulling, drains and exits: %s", change.stale_node(),
              extra={"problem": "partitions_changed", "partitions": change.setting, "live": change.live})
    stop.set()
    raise PartitionsChanged(change.stale_node(), change=change)


async def watch_result(task: asyncio.Task[None]) -> ConfigError | NatsClosed | None:
    """End the worker's :func:`stop_if_repartitioned` task (cancelled if still running) and return the
    :class:`~gamead_core.errors.PartitionsChanged` (or refusal, or :class:`NatsClosed`) it raised, or None; for
    the caller to raise only when nothing else failed (never masking the main loop's or the drain's exception).
    Any other error is logged, not raised."""
    if not await ended([task], 2.0, "the partitions watch"):  # cancelled again until it ends (hang50), bounded
        return None
    try:
        task.result()
    except (ConfigError, NatsClosed) as exc:  # PartitionsChanged, credentials refused, NATS closed the client
        return exc
    except asyncio.CancelledError:
        if not task.cancelled():
            raise  # we ourselves were cancelled
    except Exception:  # noqa: BLE001 - never replaces what ends the worker
        log.exception("the partitions watch failed")
    return None
