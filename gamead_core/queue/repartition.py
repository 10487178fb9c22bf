"""A change of ``queue.partitions``: refused on a live queue, made on a drained one.

The rule (:func:`gamead_core.queue.topology_plan.partition_change` decides, pure): the work streams that exist
(``GAMEAD_ADS``, ``GAMEAD_ADS_1`` …, each with the setting it was made with in its metadata) must fit the setting.
When they do not — more streams, fewer, or made with another setting — the start-up of ``gamead serve`` and
``gamead worker`` is refused with one line (:class:`~gamead_core.errors.PartitionsChanged`, exit code 5) while
any of them holds an ad: an ad in a partition the new setting no longer has would never be read, and an ad
re-published to another partition would escape its duplicate window. Once they hold none (the queue drained),
the start-up makes the change: it deletes the streams of partitions the setting no longer has (each checked
empty just before) and the topology check creates the new ones. ``gamead doctor`` reports a mismatch.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import nats.js.errors
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.errors import PartitionsChanged
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.partitions import PartitionChange

log = logging.getLogger("gamead_core.queue.topology")


async def settle_partitions(js: JetStreamContext, change: PartitionChange | None, *, update: bool) -> None:
    """Nothing when ``change`` is None. Raises :class:`PartitionsChanged` (one line: what exists, what is set,
    the fix) unless the change is drained and this is a start-up check (``update``); then makes it (the
    streams of removed partitions deleted; the caller creates the new ones)."""
    if change is None:
        return
    if not (change.drained and update):
        raise PartitionsChanged(change.describe())
    await _drop_partitions(js, change)


async def _drop_partitions(js: JetStreamContext, change: PartitionChange) -> None:
    """Delete the (empty) work streams of the partitions ``change`` removes; a stream that holds an ad again
    by now is left, and the change refused."""
    for p in change.removed:
        stream = names.work_stream(p)
        with nats_boundary():
            try:
                held = int((await js.stream_info(stream)).state.messages or 0)
            except nats.js.errors.NotFoundError:
                continue
            if held:
                raise PartitionsChanged(replace(change, held=held).describe())
            await js.delete_stream(stream)
        log.warning("queue.partitions is %d: deleted the empty work stream %s of partition %d", change.setting,
                    stream, p, extra={"object_name": stream, "action": "deleted"})
    if change.setting != len(change.found) or change.removed:
        log.warning("queue.partitions changed on a drained queue: the work streams were %s, now %d partition(s)",
                    ", ".join(names.work_stream(p) for p in change.found), change.setting)


__all__ = ["settle_partitions"]
