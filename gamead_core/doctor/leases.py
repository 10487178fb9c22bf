"""Leader leases left by a node that is gone, for the doctor (attack31b F2): finding ``lease_stuck``.

One worker at a time reaps (the ``reaper`` lease of bucket ``gamead_leases``), one node scales (``autoscaler``):
:mod:`gamead_core.scaling.lease`. A holder that died with its lease's ``expiresAt`` far ahead (its clock ahead, a
hand edit, a bug) kept every other node a follower until then: nobody re-queued a dead API's records, swept
stranded messages, healed the DLQ or scaled, and the doctor said every invariant held. Nodes now also judge such a
lease expired on their own clock (unchanged for a TTL); the doctor names it meanwhile, and where no node of this
version follows it. A live lease (``expiresAt`` not passed) is stuck when (:func:`stuck_text`):

* its ``expiresAt`` lies further ahead than the TTL the nodes use for that key (this node's settings:
  :func:`lease_ttls`) by more than :data:`CLOCK_SLACK`: a holder renews to ``now + ttl``, so it was written by a
  clock ahead, or by hand; or
* its holder has no live registry entry (API nodes and workers register under the id they hold leases with;
  ``gamead up``'s own autoscaler, ``up-<host>-<pid>``, registers nothing and is judged by the first rule only).

Read twice (:meth:`Leases.first`, then :meth:`Leases.confirm` after the doctor's settle, with a fresh registry
listing): reported only when the key kept the revision first read and is still stuck, with a repair action
``["lease_stuck", key, revision]`` (:mod:`gamead_core.doctor.repair` releases it by compare-and-set at that
revision; a live node takes it at its next step). Cost: 1 keys listing and 1 get per key (2 keys), 1 registry
listing when a lease is live; again for the suspects. Never raises: an unreadable bucket is another check's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.doctor.model import Finding, ReadStats
from gamead_core.doctor.verdict import add
from gamead_core.errors import GameadError
from gamead_core.models import utc_iso
from gamead_core.registry import Registry
from gamead_core.scaling.lease_rule import AUTOSCALER_LEASE, Lease, lease_ttl
from gamead_core.worker.reaper import reaper_lease_ttl

log = logging.getLogger(__name__)

#: Seconds an ``expiresAt`` may lie beyond ``now + ttl`` before it is a clock ahead, not the reading's lag.
CLOCK_SLACK = 2.0
#: Holder id prefixes of processes that keep no registry entry (``gamead up``'s autoscaler).
UNREGISTERED = ("up-",)
#: What waits while each lease is stuck.
WAITS = {AUTOSCALER_LEASE: "nobody scales the workers",
         names.REAPER_LEASE: "nobody recovers a dead node's ads, sweeps stranded messages or heals the DLQ"}


def lease_ttls(settings: GameadSettings) -> dict[str, float]:
    """The TTL (seconds) the nodes use for each known lease key, from ``settings`` (pure)."""
    return {AUTOSCALER_LEASE: lease_ttl(settings.autoscaler.interval),
            names.REAPER_LEASE: reaper_lease_ttl(settings.registry.heartbeat_interval, settings.registry.ttl)}


def stuck_text(key: str, lease: Lease | None, now: float, ttl: float | None,
               registered: Iterable[str] | None) -> str | None:
    """Why the lease of ``key`` is stuck (the finding's detail), or None when it is not: released, expired, or live
    and held by a registered node within its ``ttl`` (None: unknown key, only the registry is asked). ``now``: epoch
    seconds; ``registered``: ids of the live nodes (None: the registry could not be read). Pure."""
    if lease is None or lease.expired(now):
        return None
    ahead = lease.expires_at - now
    waits = WAITS.get(key, "the nodes that follow it wait")
    until = f"until {utc_iso(lease.expires_at, 'seconds')}"
    if ttl is not None and ahead > ttl + CLOCK_SLACK:
        why = (f"its expiresAt lies {ahead:.0f} s ahead, more than its TTL ({ttl:g} s): its holder's clock is ahead "
               "or it was written by hand")
    elif (registered is not None and not lease.holder.startswith(UNREGISTERED)
          and lease.holder not in set(registered)):
        why = "its holder has no live registry entry (the node is gone)"
    else:
        return None
    return (f"held by {lease.holder} {until}: {why}; {waits} until a node takes it over (nodes of this version do "
            f"within its TTL; older ones wait for expiresAt). Fix: gamead doctor --repair (releases it)")


class Leases:
    """The check over one doctor run: :meth:`first` in the first look, :meth:`confirm` in the second."""

    def __init__(self, js: JetStreamContext, settings: GameadSettings, registry: Registry) -> None:
        self._js = js
        self._ttls = lease_ttls(settings)
        self._registry = registry
        self._kv: Any = None
        self._suspects: dict[str, int] = {}  #: key → the revision first read

    @property
    def suspect(self) -> bool:
        """The first reading found a stuck lease: the second look must read again."""
        return bool(self._suspects)

    async def registered(self, stats: ReadStats) -> set[str] | None:
        """The ids of the live nodes (not ``gone``); None when the registry cannot be read."""
        ids = await self._registered(stats)
        return None if ids is None else set(ids)

    async def _registered(self, stats: ReadStats) -> list[str] | None:
        stats.api_calls += 1
        try:
            return [n.id for n in await self._registry.list() if n.state != "gone"]
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
        return out

    async def _judge(self, read: dict[str, tuple[Lease | None, int]], stats: ReadStats
                     ) -> dict[str, tuple[str, int]]:
        now = time.time()
        live = [k for k, (lease, _) in read.items() if lease is not None and not lease.expired(now)]
        registered = await self._registered(stats) if live else None
        return {k: (text, rev) for k, (lease, rev) in read.items()
                if (text := stuck_text(k, lease, now, self._ttls.get(k), registered)) is not None}

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


__all__ = ["CLOCK_SLACK", "Leases", "lease_ttls", "stuck_text"]
