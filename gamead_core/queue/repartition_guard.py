"""Before a repartition seals anything: no live node may be left on another ``queue.partitions`` (attack42b F1).

The README's procedure for ``queue.repartition: true`` is: stop every node, drain, then start ONE process with the
new setting. Before, nothing checked the first part: one start next to an idle fleet (3 APIs, 3 workers, queue empty)
repartitioned the queue, and within 20 s every old API answered each submit 503 ``topology_changed`` and every old
worker drained and exited 5: one API left taking ads that no worker ran. Now the start reads the registry
(:class:`~gamead_core.registry.Registry`: each entry says its node's ``partitions``) and refuses (exit 5, one line,
nothing sealed, deleted or rewritten) while any node whose heartbeat is younger than ``registry.ttl`` runs on a
setting other than the new one, naming each (:func:`blocking_nodes`, :func:`refusal`); an entry that may be a
node stopped or killed moments before is waited for, up to ``registry.ttl``, and refuses only if it beats again
(:func:`refuse_live_old_nodes`). A node already on the new
setting does not block (a second start with the new value is fine), nor does the starting process's own entry. An
entry without ``partitions`` (a gamead older than the field) blocks: its setting is not known to be the new one.

A registry that cannot be read (NATS not answering the listing, an incomplete one): refused, saying why (the check
could not be made, and a repartition is a rare operator act: retrying once NATS answers costs nothing). A registry
bucket that does not exist: no node has beaten since nats-server started (the bucket is memory-stored: a nats-server
restart empties it), so nothing blocks; a node that lived through that restart re-creates its entry at its next beat
(``registry.heartbeat_interval``), and one that did not beat yet is not seen. The check and the seal are two steps:
a node started on the old setting between them (or frozen past ``registry.ttl`` and resumed) is still guarded against
as before (:mod:`gamead_core.queue.repartition`: the sealed stream refuses its publishes, the old nodes stop).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from datetime import datetime

import nats.js.errors
from nats.js import JetStreamContext

from gamead_core import clock, names
from gamead_core.config import GameadSettings
from gamead_core.durations import format_duration
from gamead_core.errors import GameadError, PartitionsChanged
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.liveness import connection_of
from gamead_core.registry.kv import Registry
from gamead_core.registry.nodes import this_host
from gamead_core.registry.wire import NodeInfo

log = logging.getLogger("gamead_core.queue.topology")

#: at most this many nodes are named in a refusal (the rest counted)
NAMED = 5


def blocking_nodes(nodes: Iterable[NodeInfo], setting: int, *, now: datetime, ttl: float,
                   own: tuple[str, int]) -> list[NodeInfo]:
    """The entries of ``nodes`` that forbid a repartition to ``setting``: heartbeat younger than ``ttl`` seconds at
    ``now`` (nats-server's clock, as heartbeats are stamped), ``partitions`` other than ``setting`` (None, an older
    node's: unknown, so blocking), and not this process's own (``own``: its ``(host, pid)``). Oldest beat first.
    Pure."""
    out = [n for n in nodes
           if (now - n.heartbeat_at).total_seconds() < ttl and n.partitions != setting and (n.host, n.pid) != own]
    return sorted(out, key=lambda n: n.heartbeat_at)


def reference_now(nodes: Iterable[NodeInfo], now: datetime) -> datetime:
    """The time the entries of ``nodes`` are aged against (:func:`blocking_nodes`): ``now`` (this process's clock),
    or the newest heartbeat listed when that is earlier. Before its first sample this clock is the host's wall clock
    (:mod:`gamead_core.clock`), and a start's check comes before any: on a host 60 s ahead every live node's beat read
    older than ``registry.ttl``, none blocked, and the queue was repartitioned under them (review43 F1). An entry
    listed was written within the bucket's ``max_age`` (its TTL) anyway: an earlier reference only makes the check
    wait for an entry to expire (or to beat again) rather than pass it. Pure."""
    newest = max((n.heartbeat_at for n in nodes), default=None)
    return newest if newest is not None and newest < now else now


def refusal(blockers: list[NodeInfo], setting: int, *, now: datetime, ttl: float) -> str:
    """One line: the live nodes on another setting (id, role, host, their ``partitions``, heartbeat age; at most
    :data:`NAMED`, the rest counted), and the fix. Pure."""
    def one(n: NodeInfo) -> str:
        on = "partitions unknown (an older gamead)" if n.partitions is None else f"partitions {n.partitions}"
        age = max(0.0, (now - n.heartbeat_at).total_seconds())
        return f"{n.id} ({n.role} on {n.host}, {on}, heartbeat {format_duration(age)} ago)"

    named = ", ".join(one(n) for n in blockers[:NAMED])
    more = f" and {len(blockers) - NAMED} more" if len(blockers) > NAMED else ""
    return (f"queue.repartition to queue.partitions {setting} refused, nothing changed: {len(blockers)} live node(s) "
            f"run on another setting: {named}{more}; stop them (they beat while this start waited up to "
            f"registry.ttl = {format_duration(ttl)} for stopped nodes' entries to expire), then start again (README: "
            "Partitions)")


async def refuse_live_old_nodes(js: JetStreamContext, settings: GameadSettings, setting: int) -> None:
    """Raise :class:`PartitionsChanged` (touching nothing) while the registry lists a live node on a
    ``queue.partitions`` other than ``setting`` (:func:`blocking_nodes`), or cannot be read (its reason said).
    Returns quietly when no such node is listed, or there is no registry bucket (module docstring). Reads only:
    never creates the bucket (one lost between the check and a listing, a restarted nats-server's memory store, is
    a listing that failed: refused; before, review43 F4, the listing made it with this start's ``registry.ttl``).

    An entry is a node's last heartbeat, so one listed may be of a node stopped or killed moments ago (a stop whose
    delete a replica has not applied yet, a kill -9 before the procedure's start): the fresh clone of 99496397 was
    refused for an API stopped 2.7 s before. So the listing is read again every ``registry.heartbeat_interval``
    (at most 1 s) until every such entry has expired (within ``registry.ttl``, said once on the log), and the start
    is refused as soon as one of them beats again (or a new one appears): that node runs."""
    try:
        with nats_boundary():
            try:
                await js.stream_info(names.kv_stream(names.REGISTRY_BUCKET))
            except nats.js.errors.NotFoundError:
                log.warning("queue.repartition: no registry bucket on this NATS (no node has beaten since it "
                            "started): no live node to check")
                return
        registry = Registry(connection_of(js), js, settings.registry, replicas=settings.queue.replicas,
                            timeout=settings.nats.request_timeout)
    except GameadError as exc:
        raise _unread(setting, exc) from exc
    ttl, own = settings.registry.ttl, (this_host(), os.getpid())  # as its entries say it
    loop = asyncio.get_running_loop()
    deadline, seen = loop.time() + ttl + 1.0, None
    while True:
        try:
            nodes = await registry.list(create=False)  # a bucket lost since: refused, never made (review43 F4)
        except GameadError as exc:
            raise _unread(setting, exc) from exc
        now = reference_now(nodes, clock.utcnow())  # not the host's clock alone (review43 F1)
        blockers = blocking_nodes(nodes, setting, now=now, ttl=ttl, own=own)
        if not blockers:
            return
        beats = {n.id: n.heartbeat_at for n in blockers}
        if seen is None:
            seen = beats
            log.warning("queue.repartition: %d node(s) on another setting beat within registry.ttl (%s): waiting "
                        "up to %s for their entries to expire (stopped or killed); one that beats again refuses "
                        "the start", len(blockers), ", ".join(n.id for n in blockers[:NAMED]), format_duration(ttl),
                        extra={"nodes": [n.id for n in blockers]})
        elif any(seen.get(node) != at for node, at in beats.items()) or loop.time() >= deadline:
            raise PartitionsChanged(refusal(blockers, setting, now=now, ttl=ttl))
        await asyncio.sleep(min(settings.registry.heartbeat_interval, 1.0))


def _unread(setting: int, exc: GameadError) -> PartitionsChanged:
    return PartitionsChanged(f"queue.repartition to queue.partitions {setting} refused, nothing changed: the registry "
                             f"could not be read to check that no node runs on another setting ({exc.message}); start "
                             "again once NATS answers (README: Partitions)")


__all__ = ["NAMED", "blocking_nodes", "reference_now", "refusal", "refuse_live_old_nodes"]
