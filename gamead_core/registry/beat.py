"""Heartbeating: put a node's entry every ``registry.heartbeat_interval`` s; delete it on a clean stop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from gamead_core.clock_offset import OffsetLog
from gamead_core.errors import ConfigError, error_text
from gamead_core.names import STOPS_BUCKET
from gamead_core.registry.kv import Registry
from gamead_core.registry.wire import NodeInfo
from gamead_core.shutdown import last_writes
from gamead_core.stop_bound import settle

log = logging.getLogger(__name__)
#: the line of a stop that left its node's entry to expire: the node id, and why
NOT_REMOVED = "could not remove heartbeat of %s on shutdown (the ttl will): %s"
#: seconds a clean stop's delete mark and note are tried for unless the caller gives its own (:func:`run_heartbeat`)
LAST_FOR = 2.0


@dataclass
class BeatHealth:
    """How this node's own heartbeat fares, for what must not act on a registry it cannot write (the worker's
    fence, :mod:`gamead_core.worker.fence`; the reaper, which must not judge deaths from a registry its own
    beats do not reach). ``last_ok``: monotonic seconds of the last put that succeeded (the start until one
    did); ``failing``: the last put failed."""

    last_ok: float = field(default_factory=time.monotonic)
    failing: bool = False
    error: str | None = None  #: the last failed put's one line (None while puts succeed)
    puts: int = 0  #: puts that succeeded (the first samples nats-server's clock: ``/readyz``'s ``clock`` check)
    #: monotonic seconds at which the last put that succeeded was sent (None before one did): the entry it made
    #: lives ``registry.ttl`` from a moment no earlier than that (the worker's lease, :mod:`gamead_core.worker.lease`)
    sent_ok: float | None = None
    lapse_after: float | None = None  #: seconds between two landed puts' sends past which the entry may have lapsed
    lapsed_from: float | None = None  #: ``sent_ok`` before the last landed put sent ``lapse_after`` or more after it
    #: another process took this node's id over (:func:`~gamead_core.registry.owner.id_lost`, exit 5); no beat since
    lost: ConfigError | None = None
    tried: str | None = None  #: the node id of the last put tried (None before one was): what a stop leaves or removes

    def landed(self, sent: float) -> None:
        """A put sent at monotonic ``sent`` succeeded: note it, and a lapse between it and the one before (a node
        frozen, or its puts failing, for ``lapse_after`` s or more: its entry may have expired meanwhile)."""
        if self.lapse_after is not None and self.sent_ok is not None and sent - self.sent_ok >= self.lapse_after:
            self.lapsed_from = self.sent_ok
        self.sent_ok = sent

    def unwritten_for(self, now: float) -> float:
        """Seconds (monotonic ``now``) since the last successful put while puts fail; 0 while they succeed."""
        return max(0.0, now - self.last_ok) if self.failing else 0.0

    def readiness(self, now: float) -> str:
        """``/readyz``'s ``registry`` check (monotonic ``now``): ``ok`` while the puts succeed, else ``degraded:
        writes refused for N s: <error> …`` (attack27b F1: a full JetStream memory store). Degraded, never
        unready: the registry is a memory stream and the ads live on file storage, so this node's submits, reads
        and doctor still work and a load balancer should keep sending them; what stops is the workers (they
        fence themselves), which the text says."""
        if not self.failing:
            return "ok"
        return (f"degraded: writes refused for {self.unwritten_for(now):.0f} s: {self.error or 'unknown error'} "
                "(this node's heartbeat fails; workers that cannot beat take no work; gamead doctor)")


async def run_heartbeat(
    registry: Registry, snapshot: Callable[[], NodeInfo], interval: float, stop: asyncio.Event,
    *, unfinished: Callable[[], int] | None = None, health: BeatHealth | None = None,
    last_for: Callable[[], float] | None = None, lost: Callable[[], None] | None = None,
) -> None:
    """Put ``snapshot()`` every ``interval`` seconds until ``stop`` is set, then delete the entry and note the stop
    (:meth:`Registry.stop`): a clean stop, which the reaper does not take for a death. Unless ``unfinished()``
    (work the node leaves behind that the reaper finishes for a dead node, e.g. an API's unsettled submits:
    :mod:`gamead_core.worker.orphans`) is not 0: then the entry is left to expire (``registry.ttl``), so the
    reaper sees a death and finishes that work. The delete and note are tried again until they land, for
    ``last_for()`` seconds from then (:data:`LAST_FOR` when not given; :func:`~gamead_core.shutdown.last_writes`:
    NATS away at the stop and back within it, attack44b F2). Another process found holding the key (a put raising
    :func:`~gamead_core.registry.owner.id_lost`: this one was frozen past its start's watch) ends the beats at once
    and deletes nothing (the key is the other's): ``health.lost`` says why and ``lost()`` (when given) is called.

    Never raises: a failed beat is logged (once per outage) and retried at the next tick; ``health`` (when
    given) says how the puts fare. A host clock more than ``clock_offset.OFFSET_LIMIT`` off nats-server's is
    logged once (a warning), and once when it is back (:class:`~gamead_core.clock_offset.OffsetLog`).

    Cancelled once it beat and ``stop`` is set (its stop's bound cut it: the API's observers' stop,
    :func:`heartbeating`'s), it says in one line that it leaves its entry to the TTL, and why, before it ends
    (flakes50B: a beat's clock sample waiting its ``nats.request_timeout`` on a connection NATS had just dropped, then
    the removal tried while NATS was away, outlasted the API's 3 s for both: cancelled, it said nothing, and the log
    of a stop with NATS gone never told why the entry stayed). A cancel without ``stop`` (a test's) says nothing.
    """
    health = health if health is not None else BeatHealth()
    try:
        last = await _beat(registry, snapshot, interval, stop, health, lost)
        if last is not None:
            await _leave(registry, last, unfinished, last_for)
    except asyncio.CancelledError:  # the stop's bound cut it: the entry stays until registry.ttl; say so, and why
        if stop.is_set() and (node_id := health.tried) is not None and health.lost is None:  # a stop's, not a beat's
            why = "NATS is away" if not registry.connected else "NATS did not answer in time"
            log.info(NOT_REMOVED, node_id, f"the stop's time for it ran out ({why})", extra={"node_id": node_id})
        raise


async def _beat(registry: Registry, snapshot: Callable[[], NodeInfo], interval: float, stop: asyncio.Event,
                health: BeatHealth, lost: Callable[[], None] | None) -> NodeInfo | None:
    """:func:`run_heartbeat`'s beats until ``stop``: the last entry put (tried), or None (none tried, or the key is
    another process's: nothing of this one's to remove)."""
    last: NodeInfo | None = None
    failing = False
    offset_log = OffsetLog()  # each put samples nats-server's clock: a host clock off by > 1 s is said once
    while not stop.is_set():
        try:
            info = last = snapshot()
            health.tried = info.id
            sent = time.monotonic()
            await registry.put(info)
            health.landed(sent)
            offset_log.note(info.id)
            if failing:
                log.info("heartbeat restored")
            failing = health.failing = False
            health.last_ok, health.error, health.puts = time.monotonic(), None, health.puts + 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a heartbeat must never take its node down
            if last is not None and exc is registry.owner.lost(last.id):  # another process holds the key
                health.lost = registry.owner.lost(last.id)
                log.warning("%s", exc, extra={"node_id": last.id})
                if lost is not None:
                    lost()
                return None
            if not failing:
                log.warning("heartbeat failed (retrying every %.1fs): %s", interval,
                            error_text(exc))
            failing = health.failing = True
            health.error = error_text(exc, limit=300)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass
    return last


async def _leave(registry: Registry, final: NodeInfo, unfinished: Callable[[], int] | None,
                 last_for: Callable[[], float] | None) -> None:
    """:func:`run_heartbeat`'s stop: delete the entry and note the stop, or leave it to expire; one line says which
    when it is not removed."""
    left, node_id = unfinished() if unfinished is not None else 0, final.id
    if left:
        log.warning("%s leaves %d unsettled writes: its registry entry is left to expire (registry.ttl) so that the "
                    "reaper takes it for dead and queues those still within queue.duplicate_window (the lines "
                    "'ambiguous submits left unsettled' say if any need gamead doctor --repair; so does a NATS restart "
                    "after more than that window)", node_id, left,
                    extra={"node_id": node_id, "left": left})
        return
    try:  # its stop noted too: a clean stop is told from a death after registry.ttl (registry.stops)
        until = asyncio.get_running_loop().time() + (last_for() if last_for is not None else LAST_FOR)
        await last_writes(lambda: registry.stop(final), until=until, connected=lambda: registry.connected)
    except Exception as exc:  # noqa: BLE001 - the TTL removes it anyway
        if registry.stop_unwritten(final) == ["note"]:  # its mark landed: told by it alone, for registry.ttl
            log.info("clean stop of %s not noted in %s within the stop's last writes (told by its registry "
                     "entry's delete mark alone, for registry.ttl): %s", node_id, STOPS_BUCKET, error_text(exc))
        else:
            log.info(NOT_REMOVED, node_id, error_text(exc))


@asynccontextmanager
async def heartbeating(
    registry: Registry, snapshot: Callable[[], NodeInfo], interval: float, health: BeatHealth | None = None,
    last_for: Callable[[], float] | None = None, lost: Callable[[], None] | None = None,
) -> AsyncIterator[BeatHealth]:
    """``async with heartbeating(...) as health:`` beats while the block runs (``health``: how the puts fare, the
    one given or a new one); the entry is deleted on the way out, tried for ``last_for()`` s (:func:`run_heartbeat`).
    ``lost``: called once another process took the id over (:func:`run_heartbeat`)."""
    stop = asyncio.Event()
    health = health if health is not None else BeatHealth()
    task = asyncio.create_task(run_heartbeat(registry, snapshot, interval, stop, health=health, last_for=last_for,
                                             lost=lost))
    try:
        yield health
    finally:
        stop.set()
        await settle(task, interval + 1.0 + max(2.0, last_for() if last_for is not None else LAST_FOR), 2.0,
                     "the heartbeat")  # cancelled again if a NATS await took the cancel (hang50)


__all__ = ["BeatHealth", "heartbeating", "run_heartbeat"]
