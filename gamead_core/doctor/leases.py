"""Leader leases left by a node that is gone, for the doctor (attack31b F2): finding ``lease_stuck``.

One worker at a time reaps (the ``reaper`` lease of bucket ``gamead_leases``), one node scales (``autoscaler``):
:mod:`gamead_core.scaling.lease`. A holder that died with its lease's ``expiresAt`` far ahead (its clock ahead, a
hand edit, a bug) kept every other node a follower until then: nobody re-queued a dead API's records, swept
stranded messages, healed the DLQ or scaled, and the doctor said every invariant held. Nodes now also judge such a
lease expired on their own clock (unchanged for a TTL); the doctor names it meanwhile, and where no node of this
version follows it. A live lease (``expiresAt`` not passed) is judged by what it says of itself, its written ttl
(``expiresAt − renewedAt``) and its ``renewedAt``, never by this node's intervals (review31 R5: a healthy leader
configured with a longer interval was reported stuck, and the repair released its live lease). Its holder has a
live registry entry: never stuck. Otherwise it is stuck when (:func:`stuck_text`, the rule
:func:`gamead_core.scaling.lease_rule.stuck_why` the job leases use too):

* its ``renewedAt`` lies ahead of ``now`` by more than :data:`CLOCK_SLACK`: its holder's clock is ahead; or
* its written ttl is longer than any node trusts (:func:`gamead_core.scaling.lease_rule.trust_cap`, 10 of the TTL
  this node uses for that key: :func:`lease_ttls`): written by hand or a bug; or
* its holder has no live registry entry (API nodes and workers register under the id they hold leases with;
  ``gamead up``'s own autoscaler, ``up-<host>-<pid>``, registers nothing and is judged by the first two rules).
  Not while the registry bucket is younger than its ``max_age`` (``registry.ttl``: :func:`absence_unproven`): a
  bucket lost (a restarted nats-server empties its memory store; ``nats kv rm``) and recreated holds no entry of a
  live node until its next heartbeat — as the views and the reaper hold such a node (:mod:`gamead_core.registry.
  gone`, gone43). Only this reason waits for the bucket's age: the first two are judged at once (lease51; flakes50A
  deferred every reason for an unlisted holder, and a gone holder's lease with a TTL of 3600 s went unnamed).

The suspect lease (never renewed) held by a registered worker is named too when no run of its holder needs it
(lease54, :mod:`gamead_core.doctor.suspect_lease`: its holder another process now, not holding its ad, or past the
longest it keeps one); its repair releases it at once once that still holds, with a fresh look at the holder's entry
(:func:`release_stuck`), rather than after its whole bound unchanged.

Read twice (:meth:`Leases.first`, then :meth:`Leases.confirm` after the doctor's settle, with a fresh registry
listing): reported only when the key kept the revision first read and is still stuck, with a repair action
``["lease_stuck", key, revision]``: :func:`release_stuck` releases it by compare-and-set at that revision, only
once it has itself seen that revision unchanged for longer than the lease's own ttl (the followers' silence rule,
:func:`gamead_core.scaling.lease_rule.silent_after`): a live holder renews within it, and the repair is skipped as
healed. A live node takes the released lease at its next step. Cost: 1 keys listing and 1 get per key (2 keys),
1 registry listing when a lease is live (+ 1 stream info of the registry when one is named stuck); again for the
suspects. Never raises: an unreadable bucket is another
check's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any

import nats.js.errors
from nats.js import JetStreamContext

from gamead_core import clock, names
from gamead_core.config import GameadSettings
from gamead_core.doctor.model import Finding, ReadStats
from gamead_core.doctor.suspect_lease import idle_text, idle_why
from gamead_core.doctor.verdict import add
from gamead_core.errors import GameadError
from gamead_core.queue.connection import nats_boundary
from gamead_core.registry import NodeInfo, Registry
from gamead_core.registry.gone import absence_unproven, bucket_young  # absence_unproven re-exported: the rule's home
from gamead_core.scaling.lease_rule import (  # CLOCK_SLACK re-exported: the one rule's (stuck_why)
    AUTOSCALER_LEASE, CLOCK_SLACK, TRUST_TTLS, Lease, lease_ttl, silent_after, stuck_why, trust_cap)
from gamead_core.store.cas import StillBusy, retry_busy
from gamead_core.times import clock_utc
from gamead_core.worker.reaper import reaper_lease_ttl
from gamead_core.worker.suspect_turn import bound_of
from gamead_core.worker.turn_rule import Turn

log = logging.getLogger(__name__)

#: Holder id prefixes of processes that keep no registry entry (``gamead up``'s autoscaler).
UNREGISTERED = ("up-",)
#: What waits while each lease is stuck.
WAITS = {AUTOSCALER_LEASE: "nobody scales the workers",
         names.REAPER_LEASE: "nobody recovers a dead node's ads, sweeps stranded messages or heals the DLQ",
         names.SUSPECT_LEASE: "no suspect ad runs alone"}


def lease_ttls(settings: GameadSettings) -> dict[str, float]:
    """The TTL (seconds) the nodes use for each known lease key, from ``settings`` (pure)."""
    return {AUTOSCALER_LEASE: lease_ttl(settings.autoscaler.interval),
            names.REAPER_LEASE: reaper_lease_ttl(settings.registry.heartbeat_interval, settings.registry.ttl),
            names.SUSPECT_LEASE: bound_of(settings)}  # held at most this long, never renewed (.worker.turn_rule)


def stuck_text(key: str, lease: Lease | None, now: float, ttl: float | None,
               registered: Iterable[str] | None, gone_unproven: bool = False) -> str | None:
    """Why the lease of ``key`` is stuck (the finding's detail), or None when it is not: released, expired, held by
    a registered node, or consistent with a live holder by its own fields (its ``renewedAt`` not ahead, its written
    ttl no longer than :func:`trust_cap` of ``ttl``, the TTL this node uses for ``key``; None: unknown key, no
    cap). ``now``: epoch seconds; ``registered``: ids of the live nodes (None: the registry could not be read);
    ``gone_unproven``: a holder not among them may be live (:func:`absence_unproven`). Pure; the rules are the
    module docstring's (review31 R5)."""
    if lease is None or lease.expired(now):
        return None
    known = registered is not None and not lease.holder.startswith(UNREGISTERED)  # up-…: keeps no entry
    kind = stuck_why(renewed_ahead=lease.renewed_at - now, written_ttl=lease.ttl, ttl=ttl,
                     registered=lease.holder in set(registered or ()) if known else None,
                     gone_unproven=gone_unproven)
    if kind is None:
        return None
    waits = WAITS.get(key, "the nodes that follow it wait")
    until = f"until {clock_utc(lease.expires_at, now)}"
    if kind == "clock_ahead":
        why = (f"its renewedAt lies {lease.renewed_at - now:.0f} s ahead: its holder's clock is ahead or it was "
               "written by hand")
    elif kind == "ttl_too_long":
        why = (f"its TTL (expiresAt − renewedAt, {lease.ttl:.0f} s) is longer than any node writes (at most "
               f"{trust_cap(ttl or 0.0):g} s): it was written by hand or by a bug")
    else:
        why = "its holder has no live registry entry (the node is gone)"
    return (f"held by {lease.holder} {until}: {why}; {waits} until a node takes it over (nodes of this version do "
            f"once it stood unchanged for its TTL; older ones wait for expiresAt). Fix: gamead doctor --repair "
            "(releases it)")


def release_window(key: str, lease: Lease, settings: GameadSettings) -> float:
    """Seconds (monotonic) ``lease`` must stand unchanged before the repair releases it: the followers' rule
    (:func:`silent_after`) with the TTL this node uses for ``key`` (the largest known one for another key). Pure."""
    ttls = lease_ttls(settings)
    return silent_after(lease, ttls.get(key, max(ttls.values())))


#: A wait of the repair: ``(seconds, what it waits for and until when)`` (a job's, which says it and keeps its lease).
Wait = Callable[[float, str], Awaitable[None]]


async def _sleep(seconds: float, _what: str) -> None:
    await asyncio.sleep(seconds)


def waiting_text(key: str, lease: Lease, window: float, release_at: float, now: float) -> str:
    """What the repair of a stuck lease waits for, and until when (``release_at``, ``now``: epoch seconds), as its
    job's ``waiting`` says it (fix33a: a silent wait of 50-150 s at default settings). Pure."""
    return (f"the {key} lease held by {lease.holder or '-'}: released at {clock_utc(release_at, now)} if it is "
            f"still unchanged then — {window:.0f} s unchanged (its TTL, at most {TRUST_TTLS:g} of this node's) proves "
            "no live holder renews it; a renewal meanwhile leaves it (healed)")


async def _runs_none(js: JetStreamContext, settings: GameadSettings, registry: Registry,
                     value: bytes) -> bool | None:
    """Whether the suspect lease ``value`` serves no run of its holder now: True when its holder has no live registry
    entry (the bucket older than its ``max_age``: :func:`absence_unproven`) or :func:`idle_why` names why; False when
    its live holder may run its ad with it; None when not proven (the bucket too young, the lease unreadable). The
    proof a lease never renewed needs: "unchanged for its ttl" takes its whole bound. Raises GameadError."""
    if (turn := Turn.from_json(value)) is None or not turn.holder:
        return None
    entry, _ = await registry.lookup(turn.holder)
    now = clock.now()
    if entry is not None and entry.state != "gone":
        return idle_why(turn, entry, now, settings) is not None
    return None if bucket_young(await js.stream_info(registry.stream), now) else True


async def release_stuck(js: JetStreamContext, settings: GameadSettings, key: str, revision: int,
                        wait: Wait = _sleep, registry: Registry | None = None) -> Lease | None:
    """The repair of ``lease_stuck``: release the lease of ``key`` (no holder, expired now) by compare-and-set at
    ``revision``, once this call has seen it keep that revision for longer than :func:`release_window` (it looks
    again every sixth of it, each look ``wait(seconds, waiting_text(…))``: a job says what it waits for and until
    when). Not sooner, whatever else is known of the holder: a live holder counts itself leader until its own TTL
    after its last renewal (:mod:`gamead_core.scaling.lease`), so a shorter silence cannot exclude one that missed a
    renewal and renews in time (two leaders); and a registry entry gone is no proof either — a worker renews its
    reaper lease whether or not its heartbeat is written (the registry, a memory store, full: ``registry_unwritable``,
    the leases bucket, a file store, still taking writes), and ``gamead up``'s autoscaler keeps no entry. The suspect
    lease (never renewed, so unchanged for its whole bound) with a ``registry``: released at once when
    :func:`_runs_none` proves no run of its holder needs it, left when its holder may run its ad (lease54). Returns the
    lease released (its holder), or None when it changed meanwhile (renewed: its holder lives; taken over), is missing
    or unreadable. Raises GameadError for NATS trouble."""
    with nats_boundary():
        try:
            kv = await js.key_value(names.LEASES_BUCKET)
        except nats.js.errors.NotFoundError:
            return None
        since: float | None = None
        first_seen = 0.0  #: epoch seconds of the first get: the time the release is said for
        while True:
            try:
                entry = await kv.get(key)
            except (nats.js.errors.NotFoundError, nats.js.errors.KeyNotFoundError):
                return None
            lease = Lease.from_json(entry.value)
            if entry.revision != revision or lease is None:
                return None
            if since is None and key == names.SUSPECT_LEASE and registry is not None:
                if (idle := await _runs_none(js, settings, registry, entry.value)) is not None:
                    if not idle:
                        return None  # its holder may run its ad: left
                    break
            if since is None:  # from when the first get returned
                since, first_seen = time.monotonic(), clock.now()
            window = release_window(key, lease, settings)
            if (left := since + window - time.monotonic()) < 0:
                break
            await wait(min(left + 0.05, window / 6), waiting_text(key, lease, window, first_seen + window, clock.now()))
        now = clock.now()
        try:
            released = replace(lease, holder="", renewed_at=now, expires_at=now).to_json()
            await retry_busy(lambda: kv.update(key, released, last=revision))  # busy: sent again (fix35d)
        except (nats.js.errors.KeyWrongLastSequenceError, StillBusy):  # lost, or another write still in flight
            return None
    return lease


class Leases:
    """The check over one doctor run: :meth:`first` in the first look, :meth:`confirm` in the second."""

    def __init__(self, js: JetStreamContext, settings: GameadSettings, registry: Registry) -> None:
        self._js, self._settings = js, settings
        self._ttls = lease_ttls(settings)
        self._registry = registry
        self._turn: Turn | None = None  #: the suspect lease as last read (its own fields: .suspect_lease)
        self._kv: Any = None
        self._suspects: dict[str, int] = {}  #: key → the revision first read

    @property
    def suspect(self) -> bool:
        """The first reading found a stuck lease: the second look must read again."""
        return bool(self._suspects)

    async def registered(self, stats: ReadStats) -> set[str] | None:
        """The ids of the live nodes (not ``gone``); None when the registry cannot be read."""
        nodes = await self._nodes(stats)
        return None if nodes is None else set(nodes)

    async def young(self, stats: ReadStats) -> bool:
        """Whether the registry bucket is younger than its entries' ``max_age``: a node missing from it may be live
        (:func:`absence_unproven`); False when its stream cannot be read (the listing's word stands)."""
        stats.api_calls += 1
        try:
            info = await self._js.stream_info(self._registry.stream)
        except Exception as exc:  # noqa: BLE001 - unreadable: the listing's word stands
            log.debug("doctor: the registry bucket's age: %s", exc)
            return False
        return bucket_young(info, clock.now())

    async def _nodes(self, stats: ReadStats) -> dict[str, NodeInfo] | None:
        """The live nodes' entries (not ``gone``) by id; None when the registry cannot be read."""
        stats.api_calls += 1
        try:
            return {n.id: n for n in await self._registry.list() if n.state != "gone"}
        except GameadError as exc:
            log.debug("doctor: registry listing for the leases: %s", exc.message)
            return None

    async def _read(self, keys: Iterable[str], stats: ReadStats) -> dict[str, tuple[Lease | None, int]]:
        out: dict[str, tuple[Lease | None, int]] = {}
        for key in keys:
            stats.api_calls += 1
            try:
                entry = await self._kv.get(key)
            except Exception:  # noqa: BLE001 - deleted, purged or unreadable: no lease to judge
                continue
            out[key] = (Lease.from_json(entry.value), int(entry.revision or 0))
            if key == names.SUSPECT_LEASE:
                self._turn = Turn.from_json(entry.value)
        return out

    async def _judge(self, read: dict[str, tuple[Lease | None, int]], stats: ReadStats
                     ) -> dict[str, tuple[str, int]]:
        now = clock.now()
        live = [k for k, (lease, _) in read.items() if lease is not None and not lease.expired(now)]
        nodes = await self._nodes(stats) if live else None
        registered = None if nodes is None else list(nodes)

        def judged(unproven: bool) -> dict[str, tuple[str, int]]:
            return {k: (text, rev) for k, (lease, rev) in read.items()
                    if (text := stuck_text(k, lease, now, self._ttls.get(k), registered, unproven)) is not None}

        stuck, sure = judged(False), judged(True)  # the bucket's age read only when it matters: one named for its
        out = sure if stuck != sure and await self.young(stats) else stuck  # holder not listed, and for that alone
        key = names.SUSPECT_LEASE  # held by a registered worker that runs no suspect ad with it (lease54)
        if key in read and key not in out and nodes is not None and (turn := self._turn) is not None:
            if (text := idle_text(turn, nodes.get(turn.holder), now, self._settings)) is not None:
                out[key] = (text, read[key][1])
        return out

    async def first(self, stats: ReadStats) -> None:
        """Read every key of the leases bucket and keep the stuck ones (none when the bucket is missing)."""
        stats.api_calls += 2
        try:
            self._kv = await self._js.key_value(names.LEASES_BUCKET)
            keys = await self._kv.keys()
        except Exception as exc:  # noqa: BLE001 - missing (no key yet) or unreadable: nothing to judge
            log.debug("doctor: the leases bucket: %s", exc)
            return
        self._suspects = {k: rev for k, (_, rev) in (await self._judge(await self._read(keys, stats), stats)).items()}

    async def confirm(self, stats: ReadStats, finding: Finding, actions: list[list[Any]]) -> None:
        """Read the suspects again: one that kept its revision and is still stuck goes into ``finding`` (item
        ``<key> lease``) with a ``["lease_stuck", key, revision]`` action."""
        if not self._suspects:
            return
        again = await self._judge(await self._read(self._suspects, stats), stats)
        for key, (text, revision) in sorted(again.items()):
            if revision == self._suspects[key]:
                add(finding, f"{key} lease", text)
                actions.append(["lease_stuck", key, revision])


__all__ = ["CLOCK_SLACK", "Leases", "Wait", "absence_unproven", "lease_ttls", "release_stuck", "release_window",
           "stuck_text", "waiting_text"]
