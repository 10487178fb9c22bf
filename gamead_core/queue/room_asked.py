"""What gamead's objects ask of the servers' storage, said when JetStream has no room to create one.

attack38a F4: on a 3-node cluster whose servers had ``max_file_store: 4GB``, the default topology (the record
bucket's 4 GiB, the work streams' 1 GiB, the jobs' 256 MiB… reserved on every replica) could not be placed, and all
gamead said was ``JetStream could not store the write: no suitable peers for placement, insufficient storage (code
10005)``: no object, no size, no setting. Now the line names the object that could not be placed, what gamead's
objects reserve in all on each server, the settings those sizes come from, and the server's own setting.
"""

from __future__ import annotations

from collections.abc import Iterable

from nats.js.api import StorageType

from gamead_core.queue import limit_rule
from gamead_core.queue.topology_plan import Wanted


def room_asked(w: Wanted, wanted: Iterable[Wanted]) -> str:
    """``"stream GAMEAD_DLQ could not be placed: gamead's objects reserve 5.3 GiB of file storage on each of 3
    servers (records.max_bytes 4.0 GiB, queue.max_bytes 1.0 GiB, …): lower those, or give nats-server more room
    (jetstream max_file_store)"``, for ``w`` among all of ``wanted`` (the topology of this node's settings): the byte
    limits of the objects stored as ``w`` is (file or memory), summed per setting, largest first. Pure."""
    memory = w.kind != "consumer" and w.stream_config().storage == StorageType.MEMORY
    server = "jetstream max_memory_store" if memory else "jetstream max_file_store"
    per_setting: dict[str, int] = {}
    replicas = 1
    for other in wanted:
        if other.kind == "consumer":
            continue
        config = other.stream_config()
        if (config.storage == StorageType.MEMORY) != memory or not config.max_bytes or config.max_bytes <= 0:
            continue
        setting = limit_rule.fields_of(other.kind, other.name).get("max_bytes", f"{other.label} (fixed)")
        per_setting[setting] = per_setting.get(setting, 0) + config.max_bytes
        replicas = max(replicas, config.num_replicas or 1)
    if not per_setting:
        return f"{w.label} could not be placed: give nats-server more room ({server})"
    on = f"on each of {replicas} servers" if replicas > 1 else "on the server"
    parts = ", ".join(f"{s} {_size(n)}" for s, n in sorted(per_setting.items(), key=lambda kv: -kv[1]))
    return (f"{w.label} could not be placed: gamead's objects reserve {_size(sum(per_setting.values()))} of "
            f"{'memory' if memory else 'file storage'} {on} ({parts}): lower those, or give nats-server more room "
            f"({server})")


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
