"""A running worker's look at ``queue.partitions``: the work streams repartitioned under it (README, "Partitions").

A worker with the old setting reads only the partitions it knows and would put an ad it re-publishes into
partition ``crc32(id) mod`` its own setting. So it looks every ``api.topology_check_interval`` seconds (one
``STREAM.LIST`` and one ``CONSUMER.LIST`` per work stream: :func:`~gamead_core.queue.topology.read_topology`) and,
once the work streams no longer fit, the worker logs it, stops pulling, drains what it holds and exits with code 5
(:class:`~gamead_core.errors.PartitionsChanged`). Exiting rather than idling: its supervisor (Kubernetes,
``gamead up``) restarts it, which picks up a corrected config, and a config left stale is then refused at start
with the same line, visibly (a crash loop, a console line), instead of a live worker that counts as capacity and
pulls nothing. The API nodes do the same from their topology watch (:mod:`gamead_core.queue.watch`).
"""

from __future__ import annotations

import asyncio
import logging

from nats.js import JetStreamContext

from gamead_core.config import GameadSettings
from gamead_core.errors import GameadError, PartitionsChanged
from gamead_core.queue.partitions import PartitionChange, partition_change
from gamead_core.queue.topology import read_topology

log = logging.getLogger(__name__)


async def watch_partitions(js: JetStreamContext, settings: GameadSettings, stop: asyncio.Event, *,
                           interval: float) -> PartitionChange | None:
    """Look every ``interval`` seconds until ``stop`` is set (then None) or the work streams no longer fit
    ``queue.partitions`` (then the change). A look NATS does not answer is skipped (the next one tries again);
    never raises a gamead error."""
    while True:
        try:
            await asyncio.wait_for(stop.wait(), interval)
            return None
        except asyncio.TimeoutError:
            pass
        try:
            snapshot = await read_topology(js)
        except GameadError as exc:
            log.debug("partitions look skipped: %s", exc.message)
            continue
        change = partition_change(settings.queue.partitions, snapshot.work_streams())
        if change is not None:
            return change


__all__ = ["stop_if_repartitioned", "watch_partitions"]


async def stop_if_repartitioned(js: JetStreamContext, settings: GameadSettings, stop: asyncio.Event, *,
                                interval: float | None = None) -> None:
    """:func:`watch_partitions` (every ``api.topology_check_interval`` s unless ``interval``); once the work streams
    no longer fit, log it as an ERROR, set ``stop`` (the worker stops pulling and drains) and raise
    :class:`~gamead_core.errors.PartitionsChanged` (exit code 5) with the one line of
    :meth:`~gamead_core.queue.partitions.PartitionChange.stale_node`. Returns None once ``stop`` is set otherwise."""
    change = await watch_partitions(js, settings, stop,
                                    interval=interval or settings.api.topology_check_interval)
    if change is None:
        return
    log.error("this worker stops pulling, drains and exits: %s", change.stale_node(),
              extra={"problem": "partitions_changed", "partitions": change.setting, "live": change.live})
    stop.set()
    raise PartitionsChanged(change.stale_node(), change=change)
