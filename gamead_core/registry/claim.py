"""Claiming a node id at start: an id whose registry entry a live process of another incarnation keeps renewing
is refused (attack44 F1, F3).

Two live processes under one id write one registry key in turn, and every reaper reads each write of the other
incarnation as the death of the one before (:func:`~gamead_core.registry.nodes.deaths`): it charged the running
ad of a process that was still analysing it ``WorkerLost`` and ran it again elsewhere, once a beat, and the start
of the second process "adopted" what the first held (handed its running ads back). So a worker reads its key
before anything else it does with the registry (:func:`claim`):

* nothing there, a delete mark (a clean stop), or this very process's entry: the id is free;
* the entry of the process ``gamead up`` reaped before restarting this one under its id (``dead_pid``, on this
  host: :mod:`gamead_core.scaling.local`): the holder is known dead, the id taken over at once (attack44c F2);
* another incarnation's entry: a live holder rewrites it at least every ``heartbeat_interval`` (its own, read from
  the entry; a beat, or an announcement of the ads it holds). The start watches the key for that interval +
  :data:`WATCH_MARGIN` s, never more than ``registry.ttl`` + the margin (an entry saying 3600 made a start wait
  3601 s: attack44c F2; an entry not renewed for ``registry.ttl`` is gone from the bucket anyway). Not capped at
  this process's own ``registry.heartbeat_interval``: a live holder beating every 10 s was taken for dead by a start
  beating every 1 s, and ended exit 5 at its next beat (claim45): written again by a process other than
  this one (not a delete mark) → :func:`id_taken`, exit 5, naming the holder's host, pid and
  heartbeat age; not written or expired → the holder is dead (kill -9, a crash, a pod or a systemd unit
  restarted with a fixed ``--id``) and the start goes on, at most that long later, adopting what it held;
  deleted by its clean stop (a fixed ``--id`` pod rolled) → the start goes on, adopting nothing (review45).

Why a watch, not the holder's pid or its heartbeat's age: a pid means something only on its own host and in its
own pid namespace (containers share a host name with gamead as PID 1 in each), and an age is only as good as two
hosts' clocks; a change of the key's stream sequence is neither. What the watch cannot tell: a holder alive but
writing nothing for longer than the watch (its registry writes refused, its loop frozen) is taken for dead, as the
reaper already takes it; when it thaws its next write finds the key another's and it ends
(:mod:`gamead_core.registry.owner`, attack44c F1). ``dead_pid`` is a pid ``gamead up`` reaped itself: its
children share its host and pid namespace, so there it names one process.

The claim ends with the key's write itself, a compare-and-set on the last write it judged
(:meth:`~gamead_core.registry.kv.Registry.put_over`: expected last subject sequence, 0 for a key with no message,
a delete or purge mark's own sequence after a clean stop), not a read and, later, an unconditional first beat:
two starts at the same moment both read the key free, both started and pulled, each took the other's entry for a
predecessor's, until one's beat found the other's entry (up to the longer of their heartbeat intervals later:
claim45). Now one write lands, the other is refused (``Conflict``), reads the key again, finds the winner's
entry, and ends at once (:func:`id_taken`, exit 5) before it pulls anything. A refusal over a key holding no live
entry (deleted or expired between the read and the write) claims again, :data:`CLAIM_TRIES` times at most.
The start recovers what the dead holder it wrote over held (:class:`Claimed`,
:func:`~gamead_core.worker.reaper.adopt_predecessor`).

A registry that does not answer the key's read (a bucket just made whose replicated stream has no leader yet, which
answers "no responders": a start on a 3-node cluster ended exit 3 at once, test_replica_behind) is read again every
:data:`POLL_EVERY` s for as long as a watch could last; still unread, the start goes on unchecked, as every start
did before the claim (its beats' ownership check, :mod:`gamead_core.registry.owner`, still ends a second holder).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from gamead_core import clock
from gamead_core.errors import ConfigError, Conflict, GameadError, QueueUnavailable
from gamead_core.registry.kv import Registry
from gamead_core.registry.nodes import earlier_node_key, node_key, same_incarnation
from gamead_core.registry.wire import NodeInfo

log = logging.getLogger(__name__)

#: seconds a start watches a held key beyond the holder's heartbeat interval: its put's round trip and a busy loop
WATCH_MARGIN = 1.0
#: seconds between two reads of the key while watching it (at most)
POLL_EVERY = 0.2
#: claims a start makes while its write is refused over a key that holds no live entry (a delete mark, expiry)
CLAIM_TRIES = 3


def watch_for(holder: NodeInfo, own_interval: float, ttl: float) -> float:
    """Seconds to watch ``holder``'s entry for a renewal: its ``heartbeat_interval`` (``own_interval``, this node's
    ``registry.heartbeat_interval`` s, for an older node that does not say it), at most ``ttl`` (``registry.ttl``
    s: an entry not renewed that long is gone; a value in the entry is the holder's word: attack44c F2), plus
    :data:`WATCH_MARGIN`. A holder slower than this node is waited for, up to ``ttl`` (claim45). Pure."""
    return min(holder.heartbeat_interval or own_interval, ttl) + WATCH_MARGIN


def reaped(holder: NodeInfo, me: NodeInfo, dead_pid: int | None) -> bool:
    """True when ``holder`` is the process ``gamead up`` reaped before starting ``me`` under its id: pid
    ``dead_pid`` on ``me``'s host (a pid is known dead only on its own host, by the parent that reaped it). Pure."""
    return dead_pid is not None and holder.pid == dead_pid and holder.host == me.host


def renewed_by_other(first_seq: int, seq: int, entry: NodeInfo | None, me: NodeInfo) -> bool:
    """True when the key, last written at ``first_seq`` when the start read it, was written again (``seq``) with
    ``entry``, a live entry of a process other than ``me``. Pure."""
    return seq != first_seq and entry is not None and not same_incarnation(entry, me)


def id_taken(node_id: str, holder: NodeInfo, age: float, watched: float | None, *, late: bool = False) -> ConfigError:
    """The one-line refusal of a start as ``node_id`` that ``holder`` (a live process) holds: its host, pid and
    heartbeat age (``age`` s), and the watch (``watched`` s) that saw it renewed (None: it wrote the key between
    this start's read and write: a start at the same moment, or, ``late``, the watched holder itself renewing
    right after the watch: review45 F5). A ``ConfigError``: exit 5, as a taken port
    (:func:`gamead_core.listen.listen_refusal`). Pure."""
    seen = (f"its entry was renewed while this start watched it for {watched:.1f} s" if watched is not None else
            "it renewed its entry right after this start's watch ended (a late beat, or a process resumed)" if late
            else "it wrote its entry between this start's read of the key and its own write: two starts at once")
    return ConfigError(
        f"the id {node_id} is held by a live process: host {holder.host}, pid {holder.pid}, heartbeat {age:.1f} s ago "
        f"({seen}); two processes under one id would "
        "each take the other for dead and charge its running ads: stop that process or choose another --id")


async def _revision(registry: Registry, node_id: str, until: float,
                    earlier: bool = False) -> tuple[int, NodeInfo | None] | None:
    """:meth:`Registry.revision` of ``node_id`` (``earlier``: of its older gamead's key), read again every
    :data:`POLL_EVERY` s while the registry does not answer (``QueueUnavailable``) until ``until`` (the loop's
    clock); None if it never did."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return await registry.revision(node_id, earlier)
        except QueueUnavailable:
            if loop.time() + POLL_EVERY >= until:
                return None
            await asyncio.sleep(POLL_EVERY)


@dataclass(frozen=True)
class Claimed:
    """The id is this process's: its entry was written over the key's last write (:meth:`Registry.put_over`), or
    is to be over it (``written`` False: that write went unanswered, the dead holder's write noted as this process's
    to write over: :meth:`~.owner.Ownership.taken_over`). ``previous``: the dead holder's entry it replaces, whose
    held ads the start recovers (None: the key was free)."""

    previous: NodeInfo | None
    written: bool = True


async def _write_over(registry: Registry, me: NodeInfo, seq: int, holder: NodeInfo | None) -> Claimed | None:
    """Write ``me`` over the key's last write at ``seq`` (``holder``: that write's entry, a dead process's, or None).
    None: another write came first and is not a live process's (a delete mark, expiry): read again. Raises
    :func:`id_taken` when it is another process's (it wrote after this start read: it lives)."""
    try:
        await registry.put_over(me, seq)
    except Conflict:
        if (read := await _revision(registry, me.id, 0.0)) is None:
            return None  # unread: claim again
        entry = read[1]
        if entry is not None and same_incarnation(entry, me):  # this write, sent again (no responders), landed
            return Claimed(holder)
        if entry is not None:
            late = holder is not None and same_incarnation(entry, holder)  # the watched one renewed after all
            raise id_taken(me.id, entry, max(0.0, clock.now() - entry.heartbeat_at.timestamp()), None,
                           late=late) from None
        return None
    except QueueUnavailable as exc:  # unanswered: it may have landed; the first beat writes over that seq
        registry.owner.taken_over(me.id, seq)
        log.warning("the id %s: its claim's write was not answered (%s): starting on the key as read", me.id,
                    exc.message, extra={"node_id": me.id})
        return Claimed(holder, written=False)
    return Claimed(holder)


async def claim(registry: Registry, me: NodeInfo, *, interval: float, ttl: float,
                dead_pid: int | None = None) -> Claimed | None:
    """Take ``me.id`` for this process unless another live process holds it (module docstring): the key's last
    write read, judged, and ``me`` written over it, a compare-and-set (:meth:`Registry.put_over`). ``interval``
    and ``ttl``: this node's ``registry.heartbeat_interval`` and ``registry.ttl``, seconds; ``dead_pid``: the pid
    of the predecessor ``gamead up`` reaped (:func:`reaped`). Returns at once when the key is free or the reaped
    predecessor's; after at most :func:`watch_for` seconds when it holds a dead process's entry. Returns
    :class:`Claimed` (the dead holder's entry, if any), or None when the registry did not answer the read (the
    start goes on unchecked). Raises :func:`id_taken`'s ``ConfigError`` (a live holder, or a rival start whose
    write came first) and the gamead error tree (a registry failing otherwise than by not answering)."""
    loop = asyncio.get_running_loop()
    await _older_holder(registry, me, interval, ttl, dead_pid)
    until = loop.time() + min(interval, ttl) + WATCH_MARGIN
    for _ in range(CLAIM_TRIES):
        if (read := await _revision(registry, me.id, until)) is None:
            log.warning("the id %s: the registry did not answer its key's read: starting without the check that no "
                        "live process holds it", me.id, extra={"node_id": me.id})
            return None
        seq, holder = read
        if holder is not None and same_incarnation(holder, me):
            return Claimed(None)
        if holder is not None and reaped(holder, me, dead_pid):
            log.info("the id %s: its entry is of process %d, which gamead up saw end: taken over at once", me.id,
                     holder.pid, extra={"node_id": me.id})
        elif holder is not None:
            seq, stopped = await _watch(registry, me, seq, holder, interval, ttl)
            holder = None if stopped else holder  # a clean stop left nothing to adopt (review45)
        if (claimed := await _write_over(registry, me, seq, holder)) is not None:
            return claimed
    raise QueueUnavailable(f"the registry key of {me.id} changed under {CLAIM_TRIES} claims in a row")


async def _older_holder(registry: Registry, me: NodeInfo, interval: float, ttl: float, dead_pid: int | None) -> None:
    """Watch the key an older gamead beats ``me.id`` under (:func:`~.nodes.earlier_node_key`: ``worker_1``'s is
    ``worker_1``, its own ``worker=5f1``) as :func:`claim` watches the id's own: an entry of ``me.id`` there renewed
    raises :func:`id_taken` (review46 F1: a rolling upgrade of a fixed ``--id`` pod, the new one started while the
    older one still ran, read only its own key, found it free, started beside the live older process and adopted
    its running ads). Nothing for an id whose key is the same, an entry not renewed, or a key not read."""
    if earlier_node_key(me.id) == node_key(me.id):
        return
    loop = asyncio.get_running_loop()
    read = await _revision(registry, me.id, loop.time() + min(interval, ttl) + WATCH_MARGIN, earlier=True)
    if read is None or read[1] is None or same_incarnation(read[1], me) or reaped(read[1], me, dead_pid):
        return
    await _watch(registry, me, read[0], read[1], interval, ttl, earlier=True)


async def _watch(registry: Registry, me: NodeInfo, first_seq: int, holder: NodeInfo, interval: float,
                 ttl: float, earlier: bool = False) -> tuple[int, bool]:
    """Watch ``holder``'s entry (the key's last write at ``first_seq``) for :func:`watch_for` seconds; return the
    sequence of the key's last write once the holder is gone (not renewed; deleted or expired), and whether it
    stopped cleanly (its delete mark or stop note, :meth:`Registry.stopped`): then it held nothing to recover
    (review45: a holder stopping during the watch, e.g. a fixed ``--id`` pod rolled, was adopted as dead, its
    held ads handed back a second time and a line saying it died). Raises :func:`id_taken` when another process
    wrote it meanwhile."""
    loop = asyncio.get_running_loop()
    window = watch_for(holder, interval, ttl)
    deadline = loop.time() + window
    log.info("the id %s has an entry of another process (host %s, pid %d): watching it up to %.1f s for a beat "
             "before taking it", me.id, holder.host, holder.pid, window, extra={"node_id": me.id})
    while (left := deadline - loop.time()) > 0:
        await asyncio.sleep(min(POLL_EVERY, left))
        if (read := await _revision(registry, me.id, deadline, earlier)) is None:
            break  # unread to the watch's end: not renewed that it could see
        seq, entry = read
        if entry is not None and renewed_by_other(first_seq, seq, entry, me):
            raise id_taken(me.id, entry, max(0.0, clock.now() - entry.heartbeat_at.timestamp()), window)
        if seq != first_seq:  # deleted (a clean stop) or expired: nobody holds it
            return seq, seq != 0 and await _stopped(registry, holder)
    log.info("the id %s: the entry of process %d on %s was not renewed in %.1f s: it is dead, its id taken over",
             me.id, holder.pid, holder.host, window, extra={"node_id": me.id})
    return first_seq, False


async def _stopped(registry: Registry, holder: NodeInfo) -> bool:
    """Whether ``holder``, whose entry left its key during the watch, stopped cleanly (:meth:`Registry.stopped`);
    False when that cannot be read (adopted as a death: every recovery is a compare-and-set on the records)."""
    try:
        stopped = await registry.stopped(holder)
    except GameadError as exc:
        log.debug("the id %s: whether process %d stopped cleanly not read: %s", holder.id, holder.pid, exc.message)
        return False
    if stopped:
        log.info("the id %s: process %d on %s stopped cleanly while this start watched its entry: the id is free",
                 holder.id, holder.pid, holder.host, extra={"node_id": holder.id})
    return stopped


__all__ = ["CLAIM_TRIES", "POLL_EVERY", "WATCH_MARGIN", "Claimed", "claim", "id_taken", "reaped", "renewed_by_other",
           "watch_for"]
