"""Clean-stop notes: what tells a node that stopped cleanly from one that died, for as long as the reaper looks back.

A node that stops cleanly deletes its registry entry (:func:`gamead_core.registry.beat.run_heartbeat`); an API has
settled its own writes first. The reaper took that delete mark for the proof, but the registry bucket's max_age
(``registry.ttl``, 10 s) removes the mark with the entry, while the reaper looks back ``queue.duplicate_window`` −
``SAFETY`` (100 s by default) for the deaths no lease holder saw (:mod:`gamead_core.worker.orphan_read`): an API
stopped cleanly 10-100 s before a worker took the lease (a rolling deploy: APIs, then workers) was logged as one
that "died unseen" and every still-queued record of its backlog was re-put and published again (each repeat
dropped as a duplicate: N gets, N writes, N publishes and a false alarm; review41 F2).

So the stopping node also puts one small note under its incarnation (:func:`~gamead_core.registry.incarnation`,
keyed one to one by :func:`~gamead_core.registry.node_key`) in bucket ``gamead_stops``, file storage (a NATS
restart, which loses the memory-stored registry, keeps it: the reaper's first look after one is when it counts),
each key dropped :data:`STOPS_TTL` after its write, the most ``queue.duplicate_window`` allows: every window is
covered without a setting of its own. One key of about 100 bytes per process stopped, for a day.

An older gamead writes no note: its clean stop is told by the delete mark alone, as before. A bucket missing (a
stack whose topology an older gamead made) is no note: the write fails quietly and a read finds none.
"""

from __future__ import annotations

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from gamead_core import names
from gamead_core.config.section import DAY
from gamead_core.queue.connection import nats_boundary
from gamead_core.registry.nodes import incarnation, node_key
from gamead_core.registry.wire import NodeInfo

#: seconds a clean-stop note lives: the most ``queue.duplicate_window`` may be (config), so the note outlives every
#: look back of the reaper (``duplicate_window`` − ``SAFETY``)
STOPS_TTL = float(DAY)


def stops_bucket_config(replicas: int = 1) -> KeyValueConfig:
    """``gamead_stops`` as :mod:`gamead_core.queue.topology` declares it: one value per key, kept
    :data:`STOPS_TTL` s, file storage, ``replicas`` (``queue.replicas``)."""
    return KeyValueConfig(bucket=names.STOPS_BUCKET, description="gamead clean stops: one note per node process "
                          "that stopped cleanly, kept a day", history=1, ttl=STOPS_TTL, storage=StorageType.FILE,
                          replicas=replicas)


def stop_key(node: NodeInfo) -> str:
    """The key of ``node``'s process's note: its incarnation, one to one (pure)."""
    return node_key(incarnation(node.id, node.pid, node.started_at))


class StopNotes:
    """The ``gamead_stops`` bucket, used without a look-up (no I/O until a note is put or read)."""

    def __init__(self, js: JetStreamContext) -> None:
        self._kv = KeyValue(name=names.STOPS_BUCKET, stream=names.kv_stream(names.STOPS_BUCKET),
                            pre=names.kv_prefix(names.STOPS_BUCKET), js=js, direct=False)

    async def note(self, node: NodeInfo) -> None:
        """Note that ``node``'s process stops cleanly (its incarnation as the value). Raises the gamead error tree
        (the bucket missing: no responders, :class:`~gamead_core.errors.QueueUnavailable`)."""
        with nats_boundary():
            await self._kv.put(stop_key(node), incarnation(node.id, node.pid, node.started_at).encode())

    async def noted(self, node: NodeInfo) -> bool:
        """True if ``node``'s process noted a clean stop within :data:`STOPS_TTL`; False if not (or the bucket is
        missing). Raises the gamead error tree when NATS does not answer."""
        with nats_boundary():
            try:
                entry = await self._kv.get(stop_key(node))
            except (nats.js.errors.KeyNotFoundError, nats.js.errors.NotFoundError):
                return False
        return bool(entry.value)


__all__ = ["STOPS_TTL", "StopNotes", "stop_key", "stops_bucket_config"]
