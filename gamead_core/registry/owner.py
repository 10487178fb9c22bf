"""Which registry keys this process writes, and whether another incarnation took one over (attack44c F1).

The start's claim (:mod:`gamead_core.registry.claim`) takes for dead a holder that wrote nothing for its watch: a
process SIGSTOPped (a paused VM or container) past it, then resumed, is alive, and before this both wrote one key
for ever (views alternated pids, every reaper said "died" each few seconds). So every write of a node's entry goes
through :class:`Ownership` (:class:`~gamead_core.registry.kv.Registry` holds one): an acknowledged put first reads
the key and, when its last write is an entry of another process — not the dead predecessor this start took the id
over from (:meth:`Ownership.taken_over`) — refuses (:func:`id_lost`: a ``ConfigError``, exit 5) and the key is
that process's from then on: no put or announcement of this one is written there again, nor its delete mark
(:meth:`Ownership.lost`). An announcement sent without an answer (``put_nowait``) reads the key first only when
this process's last check is older than its ``registry.heartbeat_interval`` + :data:`STALE_MARGIN` s: longer than
any watch that could have taken the id over meanwhile (a frozen process), so a resumed one checks before it
writes, and a beating one pays no read. Whichever of two processes under one id reads the other's entry first
stops: one keeps the id.

A key found empty by a process that wrote it before (deleted by another process, expired while this one was frozen
or its writes failed past ``registry.ttl``, a NATS restart) is this process's to write again: the write puts it
back and :func:`gone_again` says so, one line with the id (claim45: an API SIGSTOPped past the ttl came back
silently after ``gamead workers`` had listed it gone). An API whose key another process took over ends too
(:func:`gamead_core.api.routes_v1.start_observers`): its id is its process's, so the other is a copy of it.

Once a process's clean stop began (:meth:`Ownership.stopping`, before its delete mark is sent), none of its writes
of that entry goes out after it (:meth:`Ownership.stopped`): an announcement sent after the mark (a worker's quiet
signal answered during its stop) put the entry back, listed alive until ``registry.ttl`` (reg54).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from gamead_core.errors import ConfigError, GameadError
from gamead_core.models import iso_z
from gamead_core.registry.nodes import same_incarnation
from gamead_core.registry.wire import NodeInfo
from gamead_core.times import as_utc

log = logging.getLogger(__name__)

#: seconds beyond ``registry.heartbeat_interval`` after the last check at which an unanswered write reads first
STALE_MARGIN = 1.0


def taken_by(seq: int, entry: NodeInfo | None, me: NodeInfo, predecessor_seq: int | None) -> NodeInfo | None:
    """The other process now holding ``me.id``'s key, whose last write (sequence ``seq``) is ``entry`` (None: a
    delete mark, expired, nothing): an entry of a process other than ``me``, unless it is the write at
    ``predecessor_seq`` (the dead holder's entry this start took the id over from). None: the key is ``me``'s to
    write. Pure."""
    if entry is None or same_incarnation(entry, me) or seq == predecessor_seq:
        return None
    return entry


def id_lost(me: NodeInfo, other: NodeInfo, written: bool = True) -> ConfigError:
    """The one line of process ``me`` whose id another process (``other``) took over: a worker frozen past a
    start's watch (``written``: this process wrote a heartbeat before; else a start whose claim got no answer
    while another start's landed, or one paused between its claim and first heartbeat: review46 F7); an API,
    whose id is its own process's (``api-<host>-<pid>-<random>``), copied (a cloned VM or container, a restored
    checkpoint) or its key written by hand (claim45). A ``ConfigError``, exit 5, as a refused start. Pure."""
    head = (f"the id {me.id} was taken over by another process (host {other.host}, pid {other.pid}, started "
            f"{iso_z(as_utc(other.started_at), 'milliseconds')}: its startedAt in gamead workers -o json)")
    if me.role == "api":
        return ConfigError(f"{head}: an API node's id is its own process's, so that is a copy of this process or an "
                           "entry written by hand: this process stops writing its registry entry, stops serving and "
                           "ends (restart it: it takes a new id); the other keeps the id")
    if not written:
        return ConfigError(f"{head} before this one's first heartbeat was written (another start of the id claimed "
                           "it while this one's claim got no answer, or while this one was paused after it): this "
                           "process ends before taking any work; the other keeps the id")
    return ConfigError(
        f"{head} while this one wrote no heartbeat (frozen or paused longer than the start's watch, or beating less "
        "often than that start's registry.heartbeat_interval): "
        "this process stops writing its registry entry and ends, its held ads handed back; the other keeps the id")


def gone_again(me: NodeInfo, seq: int) -> None:
    """Say (one JSON line, with the node's id) that ``me``'s entry, written by this process before, was not in its
    key when it came to write again (``seq``: the key's last write, 0 for none): deleted by another process,
    expired (this one frozen, or its writes failing, past ``registry.ttl``: the reapers took it for dead
    meanwhile), or the registry lost (a NATS restart); this write announces it again (claim45)."""
    log.warning("the registry entry of %s (pid %d) was gone when it came to write it again (%s): announcing it again",
                me.id, me.pid, "deleted by another process" if seq else
                "expired: this process frozen or its writes failing past registry.ttl, or NATS restarted",
                extra={"node_id": me.id, "key_seq": seq})


class Ownership:
    """The keys one :class:`~gamead_core.registry.kv.Registry` writes: per node id the last entry put, when its
    key was last found this process's (monotonic s), the dead predecessor's write a start took over, and the
    refusal once it was lost. ``fresh_for``: seconds a check stays good for unanswered writes (module
    docstring)."""

    def __init__(self, fresh_for: float) -> None:
        self.fresh_for = fresh_for
        self._mine: dict[str, NodeInfo] = {}
        self._checked: dict[str, float] = {}
        self._predecessor: dict[str, int] = {}
        self._lost: dict[str, ConfigError] = {}
        self._stopping: dict[str, NodeInfo] = {}  #: node id → the entry of its process whose clean stop began

    def stopping(self, me: NodeInfo) -> None:
        """``me``'s process begins its clean stop: no write of its entry goes out from now on (the module doc)."""
        self._stopping[me.id] = me

    def stopped(self, node_id: str, me: NodeInfo | None = None) -> bool:
        """Has the clean stop of ``node_id``'s process begun (:meth:`stopping`): its entry is not written again.
        ``me`` given: of that process; another process of the id (a new start on this registry) ends the refusal."""
        begun = self._stopping.get(node_id)
        if begun is not None and me is not None and not same_incarnation(begun, me):
            del self._stopping[node_id]
            return False
        return begun is not None

    def taken_over(self, node_id: str, seq: int) -> None:
        """The write at ``seq`` under ``node_id``'s key is a dead process's: this one may write over it
        (:func:`~gamead_core.registry.claim.claim` after a watch saw no beat)."""
        self._predecessor[node_id] = seq

    def lost(self, node_id: str) -> ConfigError | None:
        """The refusal (:func:`id_lost`) once another process took ``node_id`` over; None while it is ours."""
        return self._lost.get(node_id)

    def mine(self, node_id: str) -> NodeInfo | None:
        """The last entry this process put under ``node_id``, when its check is stale (None: fresh, or none)."""
        fresh = time.monotonic() - self._checked.get(node_id, float("-inf")) < self.fresh_for
        return None if fresh else self._mine.get(node_id)

    def judge(self, me: NodeInfo, seq: int, entry: NodeInfo | None, read_at: float) -> None:
        """Note the key's last write (``seq``, ``entry``), read at monotonic ``read_at``, before ``me`` is
        written. Raises :func:`id_lost` (and notes it: :meth:`lost`) when another process holds it."""
        if (refusal := self._lost.get(me.id)) is not None:
            raise refusal
        other = taken_by(seq, entry, me, self._predecessor.get(me.id))
        if other is not None:
            self._lost[me.id] = id_lost(me, other, written=me.id in self._mine)
            raise self._lost[me.id]
        if entry is None and me.id in self._mine:  # written before, gone now: this write puts it back
            gone_again(me, seq)
        self._mine[me.id], self._checked[me.id] = me, read_at

    async def check(self, me: NodeInfo, read: Callable[[str], Awaitable[tuple[int, NodeInfo | None]]]) -> int | None:
        """Read ``me.id``'s key (``read``: :meth:`~gamead_core.registry.kv.Registry.revision`) before ``me`` is
        written, and :meth:`judge` it; return the sequence of the key's last write, which an acknowledged write
        goes over (a compare-and-set: review45). A read that fails (NATS away, the bucket's stream without a leader
        yet: left44) judges nothing and returns None: the write goes on as before, with its own retries, and the
        next one reads again. Raises :func:`id_lost`."""
        if (refusal := self._lost.get(me.id)) is not None:
            raise refusal
        read_at = time.monotonic()
        try:
            seq, entry = await read(me.id)
        except GameadError as exc:
            log.debug("the registry key of %s not read before its write: %s", me.id, exc.message)
            return None
        self.judge(me, seq, entry, read_at)
        return seq

    async def may_send(self, node_id: str, read: Callable[[str], Awaitable[tuple[int, NodeInfo | None]]]) -> bool:
        """May an unanswered write of ``node_id``'s entry go out: not lost, its clean stop not begun (:meth:`stopped`,
        looked at again after any read), and the key read again (:meth:`check`) when the last look is stale (a
        process resumed after a freeze). Raises nothing but ``read``'s non-gamead errors (a bug)."""
        if node_id in self._lost or self.stopped(node_id):
            return False
        if (mine := self.mine(node_id)) is None:
            return True
        try:
            await self.check(mine, read)
        except ConfigError:  # id_lost: the key is another process's
            return False
        return not self.stopped(node_id)  # looked at again after the read: the stop may have begun meanwhile


__all__ = ["STALE_MARGIN", "Ownership", "gone_again", "id_lost", "taken_by"]
