"""The suspect lease at the bucket (poison53; the rules: :mod:`gamead_core.worker.turn_rule`).

``async with turns.turn(msg, ad_id) as alone:`` replaces the solo gate (:meth:`~.solo.SoloGate.solo`) for a suspect
ad. It looks at the lease ``suspect`` of ``gamead_leases`` (one get): held, the ad is handed back at once and the
gate is never blocked. Free, it waits at the gate for the worker's other analyses to end, and only then takes the
lease (one get, then one compare-and-set: create over no key or a deletion, update over a free value); taken by
another meanwhile, it leaves the gate and hands the ad back. lease54: taken before the gate, the lease was held
unused while an analysis hung in another slot (up to ``worker.task_timeout``), and every other worker handed its
suspect ads back meanwhile. ``alone`` is

* True: the lease is this ad's; the ad runs alone behind the gate, and the lease is deleted on its revision once
  the analysis is settled (on the way out of the ``async with``, shielded: a shutdown's cancel does not skip it);
* False: another suspect ad runs alone (this process's own included): the delivery was handed back with a ``nak``
  of :data:`~.turn_rule.HAND_ON_DELAY` (uncharged, its record untouched), the gate is open and the worker goes on
  with ordinary ads. Said at INFO once per ad (DEBUG after), with the holder;
* None: the lease could not be read or written (NATS, the bucket): the ad runs alone on this worker as it did
  before the lease, behind the gate. Said once per outage (:class:`~gamead_core.log_throttle.Outage`).

A dead holder's recovery (its next incarnation, ``gamead up``'s supervisor, the reaper:
:func:`gamead_core.worker.reaper.recover`) releases its lease at once (:func:`release_dead`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from types import TracebackType
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from gamead_core import clock, names
from gamead_core.config import GameadSettings
from gamead_core.errors import GameadError, error_text
from gamead_core.log_throttle import Outage, Throttle
from gamead_core.queue.connection import nats_boundary
from gamead_core.registry import NodeInfo, Registry
from gamead_core.registry.gone import bucket_young
from gamead_core.scaling.store import open_bucket
from gamead_core.store.cas import StillBusy, retry_busy
from gamead_core.worker.alone import queue_bound
from gamead_core.worker.shield import Shield
from gamead_core.worker.solo import SoloGate
from gamead_core.worker.turn_rule import HAND_ON_DELAY, Turn, held_by, turn_bound, verdict

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger, as handle.py's

#: At most this many ad ids whose hand-back was said at INFO are remembered (then DEBUG for them)
SAID = 1000
#: Seconds between two tries of a release that failed (:meth:`SuspectTurns.release`)
RELEASE_EVERY = 1.0
_ERRORS = (GameadError, StillBusy, nats.errors.Error, TimeoutError)


def bound_of(settings: GameadSettings) -> float:
    """:func:`~.turn_rule.turn_bound` for ``settings``: the longest a live worker holds the suspect lease."""
    return turn_bound(settings.worker.task_timeout, queue_bound(settings.queue.idle_wait), settings.registry.ttl)


async def _read(kv: Any) -> tuple[Turn | None, int]:
    """The lease and its revision (0: no key; a deletion's revision: create over it)."""
    try:
        entry = await kv.get(names.SUSPECT_LEASE)
    except nats.js.errors.KeyNotFoundError as exc:  # a deletion (KeyDeletedError) carries its revision
        marker = getattr(exc, "entry", None)
        return None, int(getattr(marker, "revision", 0) or 0)
    return Turn.from_json(entry.value), int(entry.revision or 0)


class SuspectTurns:
    """The suspect lease of one worker (``worker_id``, this process): :meth:`turn` per suspect ad. ``registry``
    (None: no lease, the ad runs alone here as before) is where a holder's entry is looked up and whose connection
    reaches the bucket."""

    def __init__(self, settings: GameadSettings, worker_id: str, gate: SoloGate, shielded: Shield,
                 registry: Registry | None) -> None:
        self.settings, self.worker_id, self.pid = settings, worker_id, os.getpid()
        self._gate, self._shielded, self._registry = gate, shielded, registry
        self._kv: Any = None
        self._outage = Outage()
        self._said = Throttle(every=math.inf, max_kinds=SAID)  #: ads whose hand-back was said at INFO (bounded)
        self.holding: str | None = None  #: the ad whose turn holds the lease in this process now
        self._later: asyncio.Task[None] | None = None  #: a failed release tried again (:meth:`release`)
        #: the newest release that failed: (revision, ad id, monotonic s it is tried until); what :attr:`_later` tries
        self._pending: tuple[int, str, float] | None = None

    def turn(self, msg: Msg, ad_id: str) -> _Turn:
        return _Turn(self, msg, ad_id)

    async def take(self, ad_id: str, *, write: bool = True) -> tuple[bool | None, int, str]:
        """(True, revision, why) taken (why: whose free lease it took over, "" when none), (False, 0, why) held by
        another, (None, 0, error) not reachable. ``write`` False: only whether it is free now (True, 0, why),
        nothing written (the look before the gate: :class:`_Turn`)."""
        if self._registry is None:
            return None, 0, "no registry"
        try:
            with nats_boundary():
                if self._kv is None:
                    js = self._registry.connection.jetstream(timeout=self.settings.nats.request_timeout)
                    self._kv = await open_bucket(js, names.LEASES_BUCKET, "gamead leader leases",
                                                 self.settings.queue.replicas)
                turn, revision = await _read(self._kv)
                now = clock.now()
                own, here = bound_of(self.settings), self.holding is not None
                what, why = verdict(turn, self.worker_id, self.pid, now, own_bound=own, running_here=here)
                if what == "look_up" and turn is not None:
                    entry, _ = await self._registry.lookup(turn.holder)
                    holder_pid = None if entry is None else entry.pid
                    if holder_pid is None and await self._registry_young(now):  # its entry may have gone with it
                        holder_pid = turn.pid
                    what, why = verdict(turn, self.worker_id, self.pid, now, holder_pid, own, running_here=here)
                if what != "take":
                    return False, 0, why
                if not write:
                    return True, 0, why
                mine = Turn(self.worker_id, self.pid, ad_id, now, own).to_json()
                try:
                    written = await retry_busy(lambda: self._kv.update(names.SUSPECT_LEASE, mine, last=revision))
                except nats.js.errors.KeyWrongLastSequenceError:
                    return False, 0, "another suspect ad took the lease first"
        except _ERRORS as exc:
            if (still := self._outage.failed(time.monotonic())) is not None:
                log.warning("suspect lease: cannot take it%s (%s): ad %s runs alone on this worker without it, as "
                            "suspect ads did before the lease (others may run alone elsewhere meanwhile)",
                            f", {still}" if still else "", error_text(exc), ad_id, extra={"ad_id": ad_id})
            return None, 0, error_text(exc)
        if (again := self._outage.recovered(time.monotonic())) is not None:
            log.info("suspect lease: %s", again, extra={"ends_warning": True})
        self.holding = ad_id
        return True, int(written), why

    async def _registry_young(self, now: float) -> bool:
        """Whether the registry bucket is younger than its entries' ``max_age`` (``registry.ttl``): a holder missing
        from it may be live, its entry gone with a restarted nats-server's memory store until its next beat (the
        doctor's rule: :func:`gamead_core.registry.gone.absence_unproven`). attack53: ``kill -9`` of ``gamead up``'s
        nats-server while a suspect ad ran alone, and another worker took the lease from the live holder (two
        suspect ads alone at once). False when its stream cannot be read (the lookup's word stands)."""
        if (registry := self._registry) is None:
            return False
        try:
            with nats_boundary():
                js = registry.connection.jetstream(timeout=self.settings.nats.request_timeout)
                info = await js.stream_info(registry.stream)
        except _ERRORS as exc:
            log.debug("suspect lease: the registry bucket's age: %s", error_text(exc))
            return False
        return bucket_young(info, now)

    async def release(self, revision: int, ad_id: str) -> None:
        """Delete the lease on ``revision`` (taken for ``ad_id``). A failure (NATS away) is tried again every
        :data:`RELEASE_EVERY` in the background until it is deleted, taken over, or past its bound: attack53, a
        release failed as nats-server restarted and every suspect ad of the fleet, this worker's own too, was
        handed back for the lease's whole bound (138 s) while its holder ran nothing. Meanwhile this process's
        next suspect ad takes it over (a leftover of its own: :attr:`holding` is cleared first)."""
        if self.holding == ad_id:
            self.holding = None
        try:
            with nats_boundary():
                await retry_busy(lambda: self._kv.delete(names.SUSPECT_LEASE, last=revision))
        except nats.js.errors.KeyWrongLastSequenceError:
            return  # taken over meanwhile: not ours any more
        except _ERRORS as exc:
            log.debug("suspect lease: not released (%s); tried again every %.0f s", error_text(exc), RELEASE_EVERY,
                      extra={"ad_id": ad_id})
            self._pending = (revision, ad_id, time.monotonic() + bound_of(self.settings))  # the newest failed
            if self._later is None or self._later.done():
                self._later = asyncio.create_task(self._release_later())

    async def _release_later(self) -> None:
        """:meth:`release`'s tries again of the newest release that failed (:attr:`_pending`), each until the lease's
        bound passed (it is free then anyway). poison55: it kept the revision it began with, so a newer turn's release
        that failed while it slept was never tried again (its delete of the older revision lost to the newer one's):
        that lease held every suspect ad of the fleet back until its bound (138 s at the defaults)."""
        while (pending := self._pending) is not None:
            revision, ad_id, until = pending
            if time.monotonic() >= until:
                self._pending = None
                return
            await asyncio.sleep(RELEASE_EVERY)
            # a newer one failed meanwhile: the older revision is not the lease, the newer one is tried
            if self._pending is pending and await self._deleted_late(revision, ad_id) and self._pending is pending:
                self._pending = None

    async def _deleted_late(self, revision: int, ad_id: str) -> bool:
        """One late try of the lease's delete on ``revision`` (taken for ``ad_id``): True once it is done with
        (deleted, said at INFO, or taken over meanwhile: not ours any more), False if NATS did not answer."""
        try:
            with nats_boundary():
                await self._kv.delete(names.SUSPECT_LEASE, last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            return True
        except _ERRORS:
            return False
        log.info("suspect lease released (ad %s), late: NATS did not answer when it was settled", ad_id,
                 extra={"ad_id": ad_id})
        return True

    def said(self, ad_id: str) -> bool:
        """Whether a hand-back of ``ad_id`` was said at INFO before (noting it now)."""
        return self._said.allow(ad_id, 0.0) is None


class _Turn:
    """``async with turns.turn(msg, ad_id) as alone:`` (the module doc)."""

    __slots__ = ("_turns", "_msg", "_ad_id", "_revision", "_entered")

    def __init__(self, turns: SuspectTurns, msg: Msg, ad_id: str) -> None:
        self._turns, self._msg, self._ad_id = turns, msg, ad_id
        self._revision = 0
        self._entered = False

    async def __aenter__(self) -> bool | None:
        turns, ad_id = self._turns, self._ad_id
        free, _, why = await turns.take(ad_id, write=False)  # held: handed back at once, the gate never blocked
        if free is False:
            return await self._hand_back(why)
        solo = turns._gate.solo()  # noqa: SLF001 - the worker's gate
        await solo.__aenter__()  # its other analyses end first: the lease is not held while they may hang
        try:
            alone, self._revision, why = await turns.take(ad_id)
        except BaseException:  # cancelled (a shutdown): nothing taken that it knows of; the gate is left
            await solo.__aexit__(None, None, None)
            raise
        if alone is False:  # taken by another meanwhile
            await solo.__aexit__(None, None, None)
            return await self._hand_back(why)
        if alone and why:
            log.info("suspect lease taken over for ad %s: %s", ad_id, why, extra={"ad_id": ad_id})
        self._entered = True
        return alone

    async def _hand_back(self, why: str) -> bool:
        turns, ad_id = self._turns, self._ad_id
        level = logging.DEBUG if turns.said(ad_id) else logging.INFO
        log.log(level, "suspect ad %s handed back (due again in %.1fs, uncharged): at most one suspect ad runs "
                "alone in the fleet and %s; this worker goes on with other ads", ad_id, HAND_ON_DELAY, why,
                extra={"ad_id": ad_id})
        await turns._shielded(self._msg.nak(delay=HAND_ON_DELAY))  # noqa: SLF001 - the worker's shield
        return False

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if not self._entered:
            return
        turns = self._turns
        await turns._gate.solo().__aexit__(et, e, tb)  # noqa: SLF001
        if self._revision:
            await turns._shielded(turns.release(self._revision, self._ad_id))  # noqa: SLF001


async def release_dead(nc: NATS, node: NodeInfo, timeout: float) -> None:
    """The recovery of dead worker ``node``: release the suspect lease if that process holds it (deleted on its
    revision), so the next suspect ad runs alone at once rather than once the lease is judged stale. Never
    raises (logged at DEBUG: the lease is free once stale anyway)."""
    try:
        with nats_boundary():
            kv = await nc.jetstream(timeout=timeout).key_value(names.LEASES_BUCKET)
            turn, revision = await _read(kv)
            if not held_by(turn, node.id, node.pid):
                return
            await retry_busy(lambda: kv.delete(names.SUSPECT_LEASE, last=revision))
    except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.BucketNotFoundError, *_ERRORS) as exc:
        log.debug("suspect lease of dead worker %s not released: %s", node.id, error_text(exc))
        return
    log.warning("suspect lease released: worker %s (pid %d) died running suspect ad %s alone; the next suspect ad "
                "may run alone at once", node.id, node.pid, turn.ad_id if turn else "?",
                extra={"worker_id": node.id, "ad_id": turn.ad_id if turn else None})


__all__ = ["SuspectTurns", "bound_of", "release_dead"]
