"""The autoscaler task: lease → observe → decide → apply → record, every ``autoscaler.interval`` seconds.

Read top-down (:meth:`Autoscaler.run`):

1. **Lease.** A :class:`~gamead_core.scaling.lease.LeaseKeeper` competes for the ``autoscaler`` lease
   (TTL = 3 × interval) in a task of its own, so a slow scale call never delays a renewal; a lapse (a frozen
   process) starts a new term: "leader since" restarts, the next decision names the lapse, and the retry back-off
   (4.) goes on where it was (nobody led meanwhile: the failures in a row are still this node's). A process
   without a backend (``backend=None``: an API node while ``gamead up`` owns the local workers) only reads.
2. **Observe** (leader only): the latest sample of the process's one
   :class:`~gamead_core.stats.sampler.QueueSampler` — the reading and rates ``/v1/stats`` and ``gamead top`` show
   (per level ``pending``, ``ack_pending``, the oldest pending ad's age; submitted, completed and per-worker rates
   over the last minute). An API node shares its stats sampler; ``gamead up``'s runs its own every second. A level
   that cannot be read is left out and named, and the policy then never scales down. Then the backend's replica
   count. It reads the queue's partitions (``GAMEAD_ADS``'s metadata), not ``queue.partitions``: a node left on an
   old setting keeps the lease and sees every waiting ad (attack28b F3), rather than stepping down — so a fleet
   whose every API node was forgotten still scales for the ads already queued (one that saw only its own: to 0).
3. **Decide.** An active manual override wins (clamped to ``[min, max]``, the reason says so; while the override
   cannot be read, the one read last stands until it expires); otherwise the pure :class:`~.policy.ScalingPolicy`.
   A new leader's fresh policy assumes the current count was recommended (no shortcut of the scale-down window)
   and is told the steps its predecessor recorded (:meth:`.changes.CountWatch.after`). A count changed by someone
   else (``kubectl scale``, an HPA) is named in the reason, and a late call (:mod:`.changes`).
4. **Apply** through the backend (:func:`~gamead_core.scaling.apply.apply_replicas`) — only while the lease is
   still held: one that lapsed during the tick's calls (a slow Kubernetes API, NATS cut off) applies and records
   nothing. A failure (Kubernetes down, RBAC, …) is logged with the backend's message, recorded, and the whole
   tick is retried after a back-off (:class:`~gamead_core.scaling.retry.Backoff`: growing with the failures in a
   row, reset by a success or a changed override, which its wait looks for every interval). A call without a
   sure answer (none, a 5xx, not JSON) is read back (applied, not applied, or unknown when that read fails too);
   one refused with 409 Conflict surely was not. While an override wins, the policy is told what ran under it
   (``overridden``). Nothing here raises out of the loop, nor takes its API node down.
5. **Record** ``state`` in the scaling bucket (:class:`~gamead_core.scaling.shared.SharedState`): what was decided,
   why, whether applied, and the last decisions (one view for every API node; a follower reads it every interval).

The per-worker rate is the sampler's (:func:`~gamead_core.stats.rates.per_worker_capacity`), or the one the policy
used instead (last measured, initial), which ``observed.perWorkerPerSec``/``perWorkerBasis`` then say.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.errors import GameadError, error_text
from gamead_core.registry import Registry
from gamead_core.scaling.apply import apply_replicas
from gamead_core.scaling.backends import LazyKubernetesScaler, backend_for
from gamead_core.scaling.changes import CountWatch
from gamead_core.scaling.deps import AutoscalerDeps, new_holder_id
from gamead_core.scaling.lease import LeaseKeeper, lease_ttl
from gamead_core.scaling.local import NoneScaler
from gamead_core.scaling.observe import decision_entry, observation_of, usable_reading
from gamead_core.scaling.policy import ScalingPolicy, retry_delay
from gamead_core.scaling.retry import Backoff, wait_any, wait_backoff
from gamead_core.scaling.shared import SharedState
from gamead_core.scaling.status import STALE_INTERVALS, observed_document, status_document
from gamead_core.scaling.store import Override, ScaleStore, active_override, clock_utc, override_reason
from gamead_core.stats.sampler import Sample
from gamead_core.stop_bound import settle

log = logging.getLogger(__name__)


class Autoscaler:
    """One process's autoscaler: ``await Autoscaler(settings, deps).run(stop)``. Never raises out of ``run``."""

    def __init__(self, settings: AutoscalerSettings, deps: AutoscalerDeps) -> None:
        self.settings, self.deps, self.link, self.node_id = settings, deps, deps.link, deps.node_id
        self.backend, self.sampler, self.interval = deps.backend, deps.sampler, settings.interval
        self.ttl, self._clock, self._mono = lease_ttl(settings.interval), deps.clock, deps.monotonic
        self.shared = SharedState(settings, deps.node_id, clock=deps.clock, on_decision=deps.on_decision,
                                  on_follow=deps.on_follow)
        self.keeper: LeaseKeeper | None = None
        self._policy: ScalingPolicy | None = None
        self._leading = False
        self._leader_since: float | None = None
        self._term, self._lapse_note = 0, ""  #: the keeper's term this node leads in; a lapse to name next
        self._backoff = Backoff()  #: the retry back-off after a failed tick
        self._failing = ""  #: what the last tick could not do ("": nothing), said again once it works (✓)
        self.poked = asyncio.Event()  #: set by :meth:`poke`: decide again now
        self._unreadable: tuple[int, ...] = ()  # levels the last observation could not read
        self._override_read: Override | None = None  # the override as last read (kept while it cannot be read)
        self._counts = CountWatch()  # the count the last tick left, and a scale call in doubt

    @property
    def store(self) -> ScaleStore | None:
        """The scaling bucket, once open (:meth:`run`)."""
        return self.shared.store

    @property
    def can_lead(self) -> bool:
        return self.backend is not None

    def poke(self) -> None:
        """Decide again at once, back-off forgotten (this node wrote or cleared an override)."""
        self._backoff.reset()
        self.poked.set()

    @property
    def is_leader(self) -> bool:
        return self.keeper is not None and self.keeper.is_leader

    # --- lifecycle --------------------------------------------------------------------------------------

    def _connected(self) -> bool:
        nc = self.link.nc
        return nc is not None and bool(nc.is_connected)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set: lead (observe, decide, apply, record) or follow (read the shared state)."""
        if not await self._wait_ready(stop):
            return
        keeper_task: asyncio.Task[None] | None = None
        keeper_stop = asyncio.Event()  # the caller's ``stop`` is not ours to set; it ends our own sampler's loop too
        sampling = asyncio.create_task(self.sampler.run(keeper_stop), name="gamead-autoscaler-sampler") \
            if self.deps.own_sampler and self.can_lead else None
        try:
            if self.can_lead:
                assert self.store is not None
                self.keeper = LeaseKeeper(await self.store.leases_kv(), self.node_id, self.ttl,
                                          clock=self._clock, monotonic=self._mono, connected=self._connected,
                                          acts=not isinstance(self.backend, NoneScaler), stack=self.deps.stack)
                keeper_task = asyncio.create_task(self.keeper.run(keeper_stop), name="gamead-autoscaler-lease")
            await self._loop(stop)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the autoscaler must never take its process down
            log.exception("the autoscaler stopped on an unexpected error")
        finally:
            keeper_stop.set()  # releases the lease if held
            if keeper_task is not None:
                await settle(keeper_task, 3.0, 2.0, "the autoscaler's lease keeper")  # it releases the lease
            await asyncio.gather(*filter(None, [sampling]), return_exceptions=True)
            if isinstance(self.backend, LazyKubernetesScaler):
                self.backend.close()  # a local backend's workers belong to its owner (`gamead up`)

    async def _wait_ready(self, stop: asyncio.Event) -> bool:
        """Wait for NATS and open the buckets (retrying); False if ``stop`` came first."""
        d = self.deps
        attempt = 0
        while not stop.is_set():
            if not self.link.ready.is_set():
                await wait_any(stop, self.link.ready, timeout=None)
                continue
            try:
                assert self.link.js is not None
                store = ScaleStore(self.link.js, replicas=d.stream_replicas)
                await store.open()
                self.shared.store = store
                if self.sampler.registry is None and d.registry is not None and self.link.nc is not None:
                    self.sampler.registry = Registry(self.link.nc, self.link.js, d.registry,
                                                     replicas=d.stream_replicas, timeout=d.request_timeout)
                return True
            except Exception as exc:  # noqa: BLE001 - e.g. JetStream still starting: try again
                attempt += 1
                delay = retry_delay(attempt)
                log.warning("autoscaler: cannot open its buckets (%s); retrying in %.1fs", error_text(exc), delay)
                await wait_any(stop, timeout=delay)
        return False

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.keeper is not None:
                self.keeper.changed.clear()
            if self.is_leader:
                if not self._leading or (self.keeper is not None and self._term != self.keeper.term):  # new term
                    await self._elected()
                try:
                    delay = await self._tick()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - one bad tick must not end the loop
                    delay = self._backoff.failed(("tick",))[1]
                    log.exception("autoscaler: tick failed; retrying in %.1fs", delay)
            else:
                if self._leading:
                    self._deposed()
                await self.shared.follow()
                delay = self.interval
            waits = [stop, self.poked] + ([self.keeper.changed] if self.keeper is not None else [])
            await wait_backoff(delay, self.interval, waits, self._new_override)
            self.poked.clear()

    async def _new_override(self) -> bool:
        """During a back-off: a changed override (``gamead scale set``/``clear`` on any node) ends it."""
        now = self._clock()
        try:
            stored = await self.store.override() if self.store is not None else None
        except GameadError:
            return False
        read = active_override(stored, now)
        if changed := read != active_override(self._override_read, now):
            self._backoff.reset()
        self._override_read = stored  # the next check compares with it, even if the tick fails before reading
        return changed

    async def _elected(self) -> None:
        assert self.store is not None
        self._leading = True
        self._leader_since = self._clock()
        self._term, self._lapse_note = self.keeper.new_term(self._leader_since) if self.keeper else (0, "")
        self._policy = ScalingPolicy(self.settings)
        if not self._lapse_note:  # a lapse of its own lease: its failures in a row stand
            self._backoff.reset()
        self._override_read = self.shared.override  # as this node last read it while following (or None)
        await self.shared.resume()
        self._counts = CountWatch.after(self.shared.decisions, self._policy, self._clock(), self._mono(), self.backend)
        log.info("autoscaler: leading (%s, backend %s)%s", self.node_id, self.backend_name,
                 self._lapse_note and f": {self._lapse_note}")  # a lapse: not a start (the keeper's line is another)

    def _deposed(self) -> None:
        self._leading, self._policy = False, None
        log.info("autoscaler: no longer leading (%s)", self.node_id)

    @property
    def backend_name(self) -> str:
        return self.backend.name if self.backend is not None else self.settings.backend

    # --- one tick -----------------------------------------------------------------------------------------

    async def _tick(self) -> float:
        """Observe, decide, apply, record. Returns the seconds until the next tick."""
        assert self.store is not None and self.backend is not None and self._policy is not None
        s = self.settings
        wall, mono = self._clock(), self._mono()
        try:
            sample = await self._observe()
        except Exception as exc:  # noqa: BLE001
            return await self._failed(wall, None, "cannot observe the queue", exc)
        reading, rates, window = sample.reading, dict(self.sampler.rates), self.sampler.rate_window  # one reading
        workers = reading.workers
        if isinstance(self.backend, NoneScaler) and workers is not None:
            self.backend.tell(sum(1 for w in workers if w.state != "draining"))
        observed = observed_document(sample, rates, self.sampler.per_worker_basis, window)
        try:
            current = await self.backend.current_replicas_async()
        except Exception as exc:  # noqa: BLE001
            return await self._failed(wall, None, "cannot read the replica count", exc, observed)
        self._works_again()

        changed = "" if isinstance(self.backend, NoneScaler) else self._counts.seen(current, mono, self._policy)
        changed, self._lapse_note = "; ".join(filter(None, (self._lapse_note, changed))), ""
        prefix = f"{changed}; " if changed else ""
        stored = await self._read_override()
        override = active_override(stored, wall)
        if stored is not None and override is None:
            prefix += f"override {stored.replicas} expired at {clock_utc(stored.until, wall)}; "
            self._override_read = None  # expired: never again, readable or not
            try:
                await self.store.clear_override(only=stored)
            except GameadError as exc:
                log.info("autoscaler: cannot remove the expired override: %s", exc.message)
        if override is not None:
            desired, reason = override_reason(override, current, s.min_replicas, s.max_replicas, workers, now=wall)
            decision, reason = None, prefix + reason
        else:
            obs = observation_of(reading, rates, current, at=mono, now=self._clock(),
                                 basis=self.sampler.per_worker_basis, window=window)
            decision = self._policy.decide(obs)
            desired, reason = decision.desired, prefix + decision.reason
            observed.update(decision.per_worker or {})  # the rate it used, when not observed: one figure, one basis

        if not self.is_leader:  # the lease lapsed during this tick's calls: another node may lead by now
            log.warning("autoscaler: the lease lapsed during this tick; %s neither applied nor recorded", reason)
            return self.interval
        outcome = await apply_replicas(self.backend, current, desired, workers=workers)  # quiet pods go first
        reason, error, now_running = reason + outcome.note, outcome.error, outcome.running
        self._counts.called(current, desired, outcome, mono, wall, decision is not None)
        if outcome.applied is not True and decision is not None:  # what did not (surely) happen: no step used
            self._policy.not_applied(decision)
        if override is not None:  # the scale-down window after the override covers what ran under it
            self._policy.overridden(mono, max(current, desired) if now_running is None else now_running)

        entry = decision_entry(wall, current, desired, reason, outcome.applied, error, override is not None,
                               self.node_id, changed=changed or None)
        if error is not None:
            attempt, delay = self._backoff.failed(("scale", desired))  # a new desired count: its attempt 1
            log.warning("autoscaler: %s %d→%d (attempt %d, retrying in %.1fs): %s",
                        "outcome unknown of scale" if outcome.applied is None else "could not scale",
                        current, desired, attempt, delay, error)
        else:
            self._backoff.reset()
            delay = self.interval
        if not self.is_leader:  # the lease lapsed during the scale call: the state is another leader's to write
            log.warning("autoscaler: the lease lapsed during the scale call; %s (applied: %s) not recorded",
                        reason, {True: "yes", False: "no", None: "unknown"}[outcome.applied])
            return self.interval
        if await self._record(entry, observed, stored if override is not None else None, now_running,
                              delay) and error is None:
            log.log(logging.INFO if desired != current else logging.DEBUG, "autoscaler: %s", reason)
        return delay

    async def _observe(self) -> Sample:
        """The sampler's latest sample, renewed if this process stood still (F4); our own's first taken now."""
        sample = await self.sampler.current() or (await self.sampler.sample() if self.deps.own_sampler else None)
        reading = usable_reading(sample)
        assert sample is not None
        unreadable = tuple(lvl for lvl, _ in reading.unreadable)
        if unreadable and unreadable != self._unreadable:
            log.warning("autoscaler: priority %s cannot be read; deciding on the others, never scaling down",
                        ", ".join(map(str, unreadable)), extra={"unreadable_levels": list(unreadable)})
        self._unreadable = unreadable
        return sample

    async def _failed(self, wall: float, current: int | None, what: str, exc: BaseException,
                      observed: dict[str, Any] | None = None) -> float:
        """Record a tick that could not decide: ``what`` failed (the entry's ``reason``) because of ``exc`` (its
        ``error``, :func:`error_text`), each said once: a status line shows ``reason: error``, so a reason that
        held the error too read it twice. Returns the seconds until the next try (the back-off)."""
        attempt, delay = self._backoff.failed((what,))  # another kind than the last: its attempt 1
        error, self._failing = error_text(exc), what
        log.warning("autoscaler: %s: %s (attempt %d, retrying in %.1fs)", what, error, attempt, delay)
        entry = decision_entry(wall, current, None, what, False, error, False, self.node_id)
        await self._record(entry, observed, None, current, delay)
        return delay

    def _works_again(self) -> None:
        """Say once that what the last tick could not do works again: the console's ✓ after its warning."""
        if self._failing:
            log.info("autoscaler: %s again", self._failing.replace("cannot ", "can ", 1), extra={"ends_warning": True})
            self._failing = ""

    async def _read_override(self) -> Override | None:
        """The stored override; when it cannot be read (a KV timeout), the one read last, which stands until it
        expires: an operator's hold must not give way to the policy for a tick and come back at the next."""
        assert self.store is not None
        try:
            self._override_read = await self.store.override()
        except GameadError as exc:
            log.info("autoscaler: cannot read the override (going on with the one read last: %s): %s",
                     "none" if self._override_read is None else self._override_read.replicas, exc.message)
        return self._override_read

    async def _record(self, entry: dict[str, Any], observed: dict[str, Any] | None,
                      override: Override | None, running: int | None, next_in: float) -> bool:
        """:meth:`SharedState.record` with this leader's figures; True when ``entry`` is a new line."""
        return await self.shared.record(
            entry, observed=observed, override=override, running=running, backend=self.backend_name,
            leader_since=self._leader_since, draining=getattr(self.backend, "draining", None),
            lease_seen=self.keeper.seen if self.keeper is not None else None, next_in=next_in)

    def status(self) -> dict[str, Any]:
        """This node's last view of the shared state (no I/O): for ``/v1/stats``."""
        return self.shared.status()


__all__ = ["STALE_INTERVALS", "Autoscaler", "AutoscalerDeps", "LazyKubernetesScaler", "backend_for", "new_holder_id",
           "status_document"]
