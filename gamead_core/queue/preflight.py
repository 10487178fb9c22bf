"""The start-up check of ``gamead serve`` for a change of ``queue.partitions`` (see
:mod:`gamead_core.queue.repartition`).

An API node connects to NATS in the background and serves 503 until it can (NATS may come up after it), so its
own topology check cannot stop the process. This one runs before the server starts: when NATS answers and its
work streams were made with another ``queue.partitions`` (holding ads or not), ``gamead serve`` ends with one
line and exit code 5 (:class:`~gamead_core.errors.PartitionsChanged`), unless ``queue.repartition`` asks for the
change on a drained queue. When NATS does not answer within ``nats.connect_timeout`` the
check is skipped after at most ``nats.connect_timeout`` + 1 s; the node's own start-up check
(:class:`gamead_core.api.state.QueueLink`) then ends the start the same way (exit 5, one line) once NATS answers,
and so does a ``queue.repartition`` this check let through when the queue holds ads by then: a refusal is final
wherever the start finds it, never retried into a change made later under live traffic. Workers check in
:func:`gamead_core.queue.topology.ensure_topology` (a refusal there ends the worker too).
"""

from __future__ import annotations

import asyncio

import nats
import nats.errors

from gamead_core.config import GameadSettings
from gamead_core.errors import PartitionsChanged, QueueUnavailable
from gamead_core.queue.connection import close_connection, connect_options
from gamead_core.queue.partitions import settle_rule
from gamead_core.queue.probe import refused_credentials
from gamead_core.queue.repartition import ads_held
from gamead_core.queue.topology import partition_change, read_topology


async def check_partitions(settings: GameadSettings, url: str) -> None:
    """Raise :class:`PartitionsChanged` if the work streams on ``url`` do not fit ``queue.partitions`` (see
    :func:`~gamead_core.queue.partitions.settle_rule`); return quietly when they fit, when ``queue.repartition``
    asks for the change on a drained queue (the node's start-up makes it), or when NATS cannot be reached. Raises
    :class:`~gamead_core.errors.ConfigError` when NATS refuses the credentials
    (:func:`~gamead_core.queue.probe.refused_credentials`)."""
    async def quiet(exc: Exception) -> None:  # a NATS away is no news here (nats-py would log a traceback)
        return None

    options = {**connect_options(settings.nats, url, name="gamead-serve-check"),
               "allow_reconnect": False, "max_reconnect_attempts": 0, "error_cb": quiet}  # never wait for NATS
    try:
        nc = await asyncio.wait_for(nats.connect(**options), settings.nats.connect_timeout + 1)
    except (OSError, nats.errors.Error, asyncio.TimeoutError) as exc:
        # credentials it refuses: one line and exit 5, not 503s
        if refused := refused_credentials(exc, url, settings.nats):
            raise refused from None
        return
    try:
        js = nc.jetstream(timeout=settings.nats.request_timeout)
        snapshot = await read_topology(js)
        change = await ads_held(js, partition_change(settings.queue.partitions, snapshot.work_streams()))
    except QueueUnavailable:
        return
    finally:
        await close_connection(nc)
    if settle_rule(change, repartition=settings.queue.repartition, update=True) == "refuse" and change is not None:
        raise PartitionsChanged(change.describe(), change=change)


def refuse_partition_change(settings: GameadSettings, url: str) -> None:
    """:func:`check_partitions` from synchronous code (``gamead serve``, before its event loop starts)."""
    asyncio.run(check_partitions(settings, url))


__all__ = ["check_partitions", "refuse_partition_change"]
