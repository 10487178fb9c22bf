"""The autoscaler task: lease → observe → decide → apply → record, every ``autoscaler.interval`` seconds.

Read top-down (:meth:`Autoscaler.run`):

1. **Lease.** A :class:`~gamead_core.scaling.lease.LeaseKeeper` competes for the ``autoscaler`` lease
   (TTL = 3 × interval) in a task of its own, so a slow scale call never delays a renewal. A process
   without a backend (``backend=None``: an API node while ``gamead up`` owns the local workers) never
   competes; it only reads the shared state.
2. **Observe** (leader only): per level ``consumer_info`` (waiting, in flight) and the age of the oldest
   waiting ad (``get_msg`` of the next undelivered message), each level on its own: a level that cannot be
   read (its consumer deleted) is left out and named, and the policy then never scales down; the work
   stream's ``last_seq`` and message count, whose deltas give the arrival rate and the completion rate (an
   ack removes the message from the work-queue stream, so completions = Δlast_seq − Δmessages); the
   registry's worker heartbeats (concurrency, p50 processing time, start time) for the per-worker service
   rate; the backend's replica count.
3. **Decide.** An active manual override wins (clamped to ``[min, max]``, the reason says so); otherwise
   the pure :class:`~gamead_core.scaling.policy.ScalingPolicy`. A new leader starts with a fresh policy,
   which assumes the current count was recommended — a leader change never shortcuts the scale-down window.
4. **Apply** through the backend. A failure (Kubernetes down, RBAC, …) is logged with the backend's
   message, recorded, and the whole tick is retried after :func:`~gamead_core.scaling.policy.retry_delay`.
   Nothing here raises out of the loop: the API node it runs in never goes down because of it.
5. **Record** ``state`` in the scaling bucket (see :mod:`gamead_core.scaling.store`): what was decided,
   why, whether it was applied, and the last decisions, so every API node shows the same thing.

Per-worker service rate (:func:`per_worker_rate`): while the queue stayed non-empty for a whole interval,
the workers were busy all along, so the measured completion rate divided by the workers that ran all
interval is what one worker does. Otherwise (idle workers understate their capacity) Little's law:
``concurrency / p50 processing time``. Neither known → ``None`` and the policy holds (or uses the last
rate it measured).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import nats.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.errors import GameadError
from gamead_core.queue.connection import translate
from gamead_core.queue.depth import level_depth
from gamead_core.scaling.lease import LeaseKeeper, lease_ttl
from gamead_core.scaling.local import NoneScaler, Scaler
from gamead_core.scaling.policy import LevelLoad, Observation, ScalingPolicy, retry_delay
from gamead_core.scaling.settings import AutoscalerSettings, KubernetesScalerSettings
from gamead_core.scaling.store import (
    Override,
    ScaleStore,
    active_override,
    clamp_override,
    iso,
    record_decision,
)

try:  # the registry gives per-worker figures; without it the loop falls back to stream-level rates
    from gamead_core.registry import Registry
except ImportError:  # pragma: no cover
    Registry = None  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)

#: ``state`` older than this many intervals is shown as stale (its leader is gone or stuck).
STALE_INTERVALS = 3.0


# --- pure parts ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    """What the autoscaler uses of one worker's heartbeat."""

    concurrency: int
    p50_ms: float | None
    started_at: float  #: epoch seconds
    draining: bool = False


@dataclass(frozen=True, slots=True)
class StreamPoint:
    """The work stream at one observation."""

    mono: float
    wall: float
    last_seq: int
    messages: int
    backlog: int


def stream_rates(prev: StreamPoint | None, now: StreamPoint) -> tuple[float, float | None]:
    """(arrivals/s, completions/s) between two observations of the work stream.

    Every accepted submit (or replay) adds one to ``last_seq``; every ack removes one message. Unknown
    (first observation, a recreated stream, no time passed) → ``(0.0, None)``.
    """
    if prev is None or now.mono <= prev.mono or now.last_seq < prev.last_seq:
        return 0.0, None
    dt = now.mono - prev.mono
    arrived = now.last_seq - prev.last_seq
    completed = max(0, arrived - (now.messages - prev.messages))
    return arrived / dt, completed / dt


def per_worker_rate(
    workers: Sequence[WorkerLoad] | None,
    *,
    completion_rate: float | None,
    saturated: bool,
    since: float,
    replicas_before: int | None = None,
) -> float | None:
    """Ads per second one worker completes (see the module docstring); None when unknown.

    ``saturated``: the backlog was non-empty at both ends of the interval that began at ``since`` (epoch).
    The workers that ran all interval are the registry's live workers started before ``since``; without
    registry entries, ``replicas_before`` (the backend's count at the start of the interval).
    """
    live = [w for w in workers or () if not w.draining]
    steady = [w for w in live if w.started_at <= since]
    if saturated and completion_rate is not None and completion_rate > 0:
        n = len(steady) if live else (replicas_before or 0)
        if n > 0:
            return completion_rate / n
    capacities = [
        w.concurrency * 1000.0 / w.p50_ms
        for w in live
        if w.concurrency > 0 and w.p50_ms is not None and math.isfinite(w.p50_ms) and w.p50_ms > 0
    ]
    return sum(capacities) / len(capacities) if capacities else None


def status_document(
    state: dict[str, Any] | None,
    lease: Any,
    override: Override | None,
    *,
    now: float,
    settings: AutoscalerSettings,
    node_id: str | None = None,
) -> dict[str, Any]:
    """The ``GET /v1/scale`` answer from the shared state, the lease and the override (all may be None)."""
    st = state or {}
    leader = None
    if lease is not None and not lease.expired(now):
        leader = {"id": lease.holder, "since": iso(lease.acquired_at), "expiresAt": iso(lease.expires_at),
                  "expiresInSeconds": round(max(0.0, lease.expires_at - now), 2)}
    updated = st.get("t")
    interval = float(st.get("intervalSeconds") or settings.interval)
    age = round(max(0.0, now - float(updated)), 2) if updated is not None else None
    ov = active_override(override, now)
    return {
        "backend": st.get("backend") or settings.backend,
        "leader": leader,
        "current": st.get("current"),
        "desired": st.get("desired"),
        "reason": st.get("reason"),
        "applied": st.get("applied"),
        "error": st.get("error"),
        "draining": st.get("draining"),
        "minReplicas": st.get("minReplicas", settings.min_replicas),
        "maxReplicas": st.get("maxReplicas", settings.max_replicas),
        "intervalSeconds": interval,
        "leaseTtlSeconds": st.get("leaseTtlSeconds", lease_ttl(settings.interval)),
        "updatedAt": st.get("updatedAt"),
        "ageSeconds": age,
        "stale": age is None or age > STALE_INTERVALS * interval,
        "observed": st.get("observed"),
        "override": ov.wire(now) if ov is not None else None,
        "decisions": list(st.get("decisions") or []),
        "node": node_id,
    }


# --- backends -----------------------------------------------------------------------------------------


class LazyKubernetesScaler:
    """The ``kubernetes`` backend, built on first use and rebuilt until its credentials load.

    A missing kubeconfig or service account must not stop the API node: the error (a ``ConfigError``)
    surfaces on each call instead, and so in the recorded decisions.
    """

    name = "kubernetes"

    def __init__(self, settings: KubernetesScalerSettings) -> None:
        self._settings = settings
        self._scaler: Any = None

    def _get(self) -> Any:
        if self._scaler is None:
            from gamead_core.scaling.kubernetes import KubernetesScaler

            self._scaler = KubernetesScaler(self._settings)
        return self._scaler

    async def current_replicas_async(self) -> int:
        return await self._get().current_replicas_async()  # type: ignore[no-any-return]

    async def set_replicas_async(self, n: int) -> None:
        await self._get().set_replicas_async(n)

    def close(self) -> None:
        if self._scaler is not None:
            self._scaler.close()


def backend_for(settings: AutoscalerSettings) -> Scaler | None:
    """The backend an API node acts through: kubernetes, none (observe and advise), or None for ``local``
    (``gamead up`` owns the local workers and runs the autoscaler itself; API nodes only show its state)."""
    if settings.backend == "kubernetes":
        return LazyKubernetesScaler(settings.kubernetes)
    if settings.backend == "none":
        return NoneScaler()
    return None


# --- the loop -----------------------------------------------------------------------------------------


class _Link(Protocol):
    """What the loop needs of a NATS link (:class:`gamead_core.api.state.QueueLink` fits)."""

    nc: NATS | None
    js: JetStreamContext | None
    ready: asyncio.Event


def _text(exc: BaseException) -> str:
    return " ".join((getattr(exc, "message", None) or str(exc) or type(exc).__name__).split())


@dataclass(frozen=True, slots=True)
class _Snapshot:
    levels: tuple[LevelLoad, ...]
    in_flight: int
    point: StreamPoint
    workers: list[WorkerLoad] | None  #: None when the registry could not be read
    unreadable: tuple[int, ...] = ()  #: levels that could not be read (their backlog is not in ``levels``)


async def _level_load(js: JetStreamContext, level: int, now: float) -> tuple[LevelLoad, int]:
    """(waiting + oldest age, in flight) of one level, as the worker's puller sees it."""
    d = await level_depth(js, level, now)
    return LevelLoad(level, d.waiting, d.oldest_age or 0.0), d.in_flight


def new_holder_id(role: str = "api") -> str:
    """``<role>-<host>-<pid>``: the id an API node also uses in the registry."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}"


class Autoscaler:
    """One process's autoscaler: ``await Autoscaler(...).run(stop)``. Never raises out of ``run``."""

    def __init__(
        self,
        settings: AutoscalerSettings,
        link: _Link,
        *,
        node_id: str,
        backend: Scaler | None,
        registry_settings: Any = None,
        stream_replicas: int = 1,
        request_timeout: float = 2.0,
        on_decision: Callable[[dict[str, Any]], None] | None = None,  # called with each new kind of decision
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.link = link
        self.node_id = node_id
        self.backend = backend
        self.interval = settings.interval
        self.ttl = lease_ttl(settings.interval)
        self._registry_settings = registry_settings
        self._replicas = stream_replicas
        self._timeout = request_timeout
        self._on_decision = on_decision
        self._clock = clock
        self._mono = monotonic
        self.store: ScaleStore | None = None
        self.keeper: LeaseKeeper | None = None
        self._registry: Any = None
        self._policy: ScalingPolicy | None = None
        self._leading = False
        self._leader_since: float | None = None
        self._prev: StreamPoint | None = None
        self._prev_current: int | None = None
        self._decisions: list[dict[str, Any]] = []
        self._failures = 0
        self._unreadable: tuple[int, ...] = ()  # levels the last observation could not read
        self._view: dict[str, Any] | None = None  # the shared state as last written or read
        self._override: Override | None = None
        self._lease_seen: Any = None

    @property
    def can_lead(self) -> bool:
        return self.backend is not None

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
        keeper_stop = asyncio.Event()  # the caller's ``stop`` is not ours to set
        try:
            if self.can_lead:
                assert self.store is not None
                self.keeper = LeaseKeeper(await self.store.leases_kv(), self.node_id, self.ttl,
                                          clock=self._clock, monotonic=self._mono, connected=self._connected)
                keeper_task = asyncio.create_task(self.keeper.run(keeper_stop), name="gamead-autoscaler-lease")
            await self._loop(stop)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the autoscaler must never take its process down
            log.exception("the autoscaler stopped on an unexpected error")
        finally:
            if keeper_task is not None:
                keeper_stop.set()  # releases the lease if held
                done, _ = await asyncio.wait({keeper_task}, timeout=3.0)
                if not done:
                    keeper_task.cancel()
                await asyncio.gather(keeper_task, return_exceptions=True)
            if isinstance(self.backend, LazyKubernetesScaler):
                self.backend.close()  # a local backend's workers belong to its owner (`gamead up`)

    async def _wait_ready(self, stop: asyncio.Event) -> bool:
        """Wait for NATS and open the buckets (retrying); False if ``stop`` came first."""
        attempt = 0
        while not stop.is_set():
            if not self.link.ready.is_set():
                await _wait_any(stop, self.link.ready, timeout=None)
                continue
            try:
                assert self.link.js is not None
                store = ScaleStore(self.link.js, replicas=self._replicas)
                await store.open()
                self.store = store
                if Registry is not None and self._registry_settings is not None and self.link.nc is not None:
                    self._registry = Registry(self.link.nc, self.link.js, self._registry_settings,
                                              replicas=self._replicas, timeout=self._timeout)
                return True
            except Exception as exc:  # noqa: BLE001 - e.g. JetStream still starting: try again
                attempt += 1
                delay = retry_delay(attempt)
                log.warning("autoscaler: cannot open its buckets (%s); retrying in %.1fs", _text(exc), delay)
                await _wait_any(stop, timeout=delay)
        return False

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.keeper is not None:
                self.keeper.changed.clear()
            if self.is_leader:
                if not self._leading:
                    await self._elected()
                try:
                    delay = await self._tick()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - one bad tick must not end the loop
                    self._failures += 1
                    delay = retry_delay(self._failures)
                    log.exception("autoscaler: tick failed; retrying in %.1fs", delay)
            else:
                if self._leading:
                    self._deposed()
                await self._follow()
                delay = self.interval
            waits = [stop] + ([self.keeper.changed] if self.keeper is not None else [])
            await _wait_any(*waits, timeout=delay)

    async def _elected(self) -> None:
        assert self.store is not None
        self._leading = True
        self._leader_since = self._clock()
        self._policy = ScalingPolicy(self.settings)
        self._prev, self._prev_current = None, None
        self._failures = 0
        try:
            previous = await self.store.state()
        except Exception as exc:  # noqa: BLE001 - start with an empty log rather than not at all
            log.info("autoscaler: cannot read the previous decisions: %s", _text(exc))
            previous = None
        self._decisions = list((previous or {}).get("decisions") or [])
        log.info("autoscaler: leading (%s, backend %s)", self.node_id, self.backend_name)

    def _deposed(self) -> None:
        self._leading = False
        self._policy = None
        log.info("autoscaler: no longer leading (%s)", self.node_id)

    @property
    def backend_name(self) -> str:
        return self.backend.name if self.backend is not None else self.settings.backend

    async def _follow(self) -> None:
        """Refresh this node's view of the shared state (for ``/v1/stats``)."""
        assert self.store is not None
        try:
            self._view, self._override, self._lease_seen = await asyncio.gather(
                self.store.state(), self.store.override(), self.store.lease())
        except Exception as exc:  # noqa: BLE001 - keep the last view
            log.debug("autoscaler: cannot read the shared state: %s", _text(exc))

    # --- one tick -----------------------------------------------------------------------------------------

    async def _tick(self) -> float:
        """Observe, decide, apply, record. Returns the seconds until the next tick."""
        assert self.store is not None and self.backend is not None and self._policy is not None
        s = self.settings
        wall, mono = self._clock(), self._mono()
        try:
            snap = await self._observe(wall, mono)
        except Exception as exc:  # noqa: BLE001
            return await self._failed(wall, None, f"cannot observe the queue: {_text(exc)}")

        if isinstance(self.backend, NoneScaler) and snap.workers is not None:
            self.backend.tell(sum(1 for w in snap.workers if not w.draining))
        try:
            current = await self.backend.current_replicas_async()
        except Exception as exc:  # noqa: BLE001
            return await self._failed(wall, None, f"cannot read the replica count: {_text(exc)}", snap)

        arrival, completion = stream_rates(self._prev, snap.point)
        saturated = self._prev is not None and self._prev.backlog > 0 and snap.point.backlog > 0
        since = self._prev.wall if self._prev is not None else wall
        rate = per_worker_rate(snap.workers, completion_rate=completion, saturated=saturated, since=since,
                               replicas_before=self._prev_current)
        self._prev, self._prev_current = snap.point, current

        prefix = ""
        stored = await self._read_override()
        override = active_override(stored, wall)
        if stored is not None and override is None:
            prefix = f"override {stored.replicas} expired at {iso(stored.until)}; "
            try:
                await self.store.clear_override(only=stored)
            except GameadError as exc:
                log.info("autoscaler: cannot remove the expired override: %s", exc.message)
        if override is not None:
            desired, note = clamp_override(override.replicas, s.min_replicas, s.max_replicas)
            action = f"scale {current}→{desired}" if desired != current else f"hold {current}"
            reason = f"manual override to {override.replicas} until {iso(override.until)} → {action}"
            if note:
                reason += f" ({note})"
        else:
            obs = Observation(
                at=mono,
                levels=snap.levels,
                unreadable_levels=snap.unreadable,
                in_flight=snap.in_flight,
                arrival_rate=arrival,
                completion_rate=completion or 0.0,
                per_worker_rate=rate,
                current_replicas=current,
                metrics_age_s=max(0.0, self._mono() - mono),
            )
            decision = self._policy.decide(obs)
            desired, reason = decision.desired, prefix + decision.reason

        applied, error = True, None
        if desired != current:
            if isinstance(self.backend, NoneScaler):
                applied = False
                reason += " (backend none: advice only, not applied)"
            else:
                try:
                    await self.backend.set_replicas_async(desired)
                except Exception as exc:  # noqa: BLE001 - recorded and retried, never raised
                    applied, error = False, _text(exc)

        observed = self._observed(snap, arrival, completion, rate)
        entry = self._entry(wall, current, desired, reason, applied, error, override is not None)
        if error is not None:
            self._failures += 1
            delay = retry_delay(self._failures)
            log.warning("autoscaler: could not scale %d→%d (attempt %d, retrying in %.1fs): %s",
                        current, desired, self._failures, delay, error)
        else:
            self._failures = 0
            delay = self.interval
        now_running = desired if applied else current
        if await self._record(entry, observed, stored if override is not None else None, now_running) and error is None:
            log.log(logging.INFO if desired != current else logging.DEBUG, "autoscaler: %s", reason)
        return delay

    async def _failed(self, wall: float, current: int | None, message: str, snap: _Snapshot | None = None) -> float:
        self._failures += 1
        delay = retry_delay(self._failures)
        log.warning("autoscaler: %s (attempt %d, retrying in %.1fs)", message, self._failures, delay)
        entry = self._entry(wall, current, None, message, False, message, False)
        observed = self._observed(snap, 0.0, None, None) if snap is not None else None
        await self._record(entry, observed, None, current)
        return delay

    async def _read_override(self) -> Override | None:
        assert self.store is not None
        try:
            return await self.store.override()
        except GameadError as exc:
            log.info("autoscaler: cannot read the override (ignoring it this tick): %s", exc.message)
            return None

    def _entry(self, wall: float, current: int | None, desired: int | None, reason: str, applied: bool,
               error: str | None, override: bool) -> dict[str, Any]:
        return {"at": iso(wall), "current": current, "desired": desired, "reason": reason, "applied": applied,
                "error": error, "override": override, "leader": self.node_id}

    def _observed(self, snap: _Snapshot | None, arrival: float, completion: float | None,
                  rate: float | None) -> dict[str, Any] | None:
        if snap is None:
            return None
        return {
            "backlog": snap.point.backlog,
            "inFlight": snap.in_flight,
            "waiting": {str(lv.level): lv.backlog for lv in snap.levels},
            "unreadableLevels": list(snap.unreadable),
            "oldestAgeSeconds": round(max((lv.oldest_age_s for lv in snap.levels if lv.backlog), default=0.0), 3),
            "arrivalPerSec": round(arrival, 3),
            "completedPerSec": None if completion is None else round(completion, 3),
            "perWorkerPerSec": None if rate is None else round(rate, 3),
            "workers": None if snap.workers is None else sum(1 for w in snap.workers if not w.draining),
        }

    async def _record(self, entry: dict[str, Any], observed: dict[str, Any] | None,
                      override: Override | None, running: int | None) -> bool:
        """Fold ``entry`` into the decisions and write the shared state (a failed write is only logged).

        ``running`` is the replica count after this decision (``current`` in the state; the entry keeps the
        count it started from).

        True when ``entry`` started a new line in the decisions (not folded into the previous one).
        """
        assert self.store is not None
        s = self.settings
        self._decisions = record_decision(self._decisions, entry)
        new_line = self._decisions[0].get("repeats") == 1
        if self._on_decision is not None and new_line:
            try:
                self._on_decision(entry)
            except Exception:  # noqa: BLE001 - a display hook must not break the loop
                log.exception("autoscaler: on_decision hook failed")
        wall = self._clock()
        state = {
            "backend": self.backend_name,
            "leader": self.node_id,
            "leaderSince": iso(self._leader_since),
            "t": wall,
            "updatedAt": iso(wall),
            "intervalSeconds": self.interval,
            "leaseTtlSeconds": self.ttl,
            "minReplicas": s.min_replicas,
            "maxReplicas": s.max_replicas,
            "current": running,
            "desired": entry["desired"],
            "reason": entry["reason"],
            "applied": entry["applied"],
            "error": entry["error"],
            "draining": getattr(self.backend, "draining", None),
            "observed": observed,
            "decisions": self._decisions,
        }
        self._view, self._override = state, override
        self._lease_seen = self.keeper.seen if self.keeper is not None else None
        try:
            await self.store.put_state(state)
        except GameadError as exc:
            log.warning("autoscaler: cannot record the decision: %s", exc.message)
        return new_line

    async def _observe(self, wall: float, mono: float) -> _Snapshot:
        js = self.link.js
        nc = self.link.nc
        if js is None or nc is None or not nc.is_connected:
            raise GameadError("NATS is not connected")
        try:
            levels, stream = await asyncio.gather(
                asyncio.gather(*(_level_load(js, lvl, wall) for lvl in names.LEVELS), return_exceptions=True),
                js.stream_info(names.ADS_STREAM),
            )
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            raise translate(exc) from exc
        read = [got for got in levels if not isinstance(got, BaseException)]
        unreadable = tuple(lvl for lvl, got in zip(names.LEVELS, levels) if isinstance(got, BaseException))
        if not read:  # no level at all: nothing to decide on
            first = next(got for got in levels if isinstance(got, BaseException))
            raise translate(first) from first
        if unreadable and unreadable != self._unreadable:
            log.warning("autoscaler: priority %s cannot be read; deciding on the others, never scaling down",
                        ", ".join(map(str, unreadable)), extra={"unreadable_levels": list(unreadable)})
        self._unreadable = unreadable
        workers = await self._workers()
        loads = tuple(load for load, _ in read)
        in_flight = sum(n for _, n in read)
        backlog = sum(lv.backlog for lv in loads)
        point = StreamPoint(mono, wall, int(stream.state.last_seq or 0), int(stream.state.messages or 0), backlog)
        return _Snapshot(loads, in_flight, point, workers, unreadable)

    async def _workers(self) -> list[WorkerLoad] | None:
        if self._registry is None:
            return None
        try:
            nodes = await self._registry.list()
        except Exception as exc:  # noqa: BLE001 - fall back to stream-level rates
            log.debug("autoscaler: registry unavailable: %s", _text(exc))
            return None
        return [
            WorkerLoad(
                concurrency=int(n.concurrency or 0),
                p50_ms=n.processing_ms.p50,
                started_at=n.started_at.timestamp(),
                draining=n.state == "draining",
            )
            for n in nodes
            if n.role == "worker"
        ]

    # --- reading --------------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """This node's last view of the shared state (no I/O): for ``/v1/stats``."""
        return status_document(self._view, self._lease_seen, self._override, now=self._clock(),
                               settings=self.settings, node_id=self.node_id)


async def _wait_any(*events: asyncio.Event, timeout: float | None) -> None:
    """Wait until any of ``events`` is set, or ``timeout`` seconds."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


__all__ = [
    "Autoscaler",
    "LazyKubernetesScaler",
    "StreamPoint",
    "WorkerLoad",
    "backend_for",
    "new_holder_id",
    "per_worker_rate",
    "status_document",
    "stream_rates",
]
