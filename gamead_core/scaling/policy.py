"""How many workers the queue needs: a pure, HPA-like policy (no I/O, no clock; time comes in ``at``).

One decision, given an :class:`Observation`:

1. **Hold on bad data.** Metrics older than ``stale_after_seconds``, or a backlog with no per-worker rate
   (step 2), keep the current count (clamped to ``[min, max]``) — never "max because unknown". A level that could
   not be read (``unreadable_levels``) makes the need a lower bound: it may scale up on the others, never down; at
   0 replicas it is activation (1 replica), since ads may wait there unseen.
2. **Need.** ``work = pending + ack_pending`` (the reason line says "backlog" for the pending ads and "delivered"
   for the ack pending ones: running, buffered or being written); the pool must keep up with arrivals and drain the
   work within ``target_drain_seconds``::

       need_rate = arrival_rate + work / target_drain_seconds

   When the oldest urgent ad (levels ``1..urgent_max_level``) waited longer than ``max_wait_seconds``, the
   urgent backlog must drain within it instead (workers serve urgent levels first)::

       need_rate = max(need_rate, arrival_rate + urgent_backlog / max_wait_seconds)

   With ``max_age_seconds`` set, the same holds for every level: when the oldest waiting ad of level ``p`` has
   waited longer, pending ads of ``1..p`` drain within it. Held unstarted ads only mark a level late (review30 F2).

   ``needed = ceil(need_rate / per_worker_rate)`` (0 with no work and no arrival) plus the quiet workers (replicas of
   no capacity), the *raw recommendation*, clamped to ``[min, max]``. No rate measured now: the last one measured
   stands in for :data:`LAST_RATE_MAX_AGE` s, its age said, then ``initial_per_worker_rate`` when set; else the count
   is held — but 0 replicas with work go to 1 (KEDA's *activation*: someone must run to measure anything), and
   N replicas all quiet to N + 1 (else the wait had no end: a quiet worker measures nothing; probe49).
   :attr:`ScalingDecision.per_worker` is a rate used that was not observed, for ``/v1/scale``'s ``observed``.
3. **Tolerance.** ``|needed / current - 1| <= tolerance`` → recommend ``current``.
4. **Up at once, bounded.** Above ``current``: at most ``max(start + scale_up_max_step, ceil(start * (1 +
   scale_up_max_percent/100)))``, ``start`` the count at the start of the trailing ``period_seconds`` (HPA's
   ``selectPolicy: Max``): the current count less this period's scale-ups, never below 0 (a count cut behind the
   policy's back, 0 with work included, can always climb again at once).
5. **Down after the window, bounded.** Below ``current``: only to the *highest* recommendation of the trailing
   ``scale_down_stabilization_seconds``, at most ``scale_down_max_step`` per period. A hold, and an empty history
   (first run, new leader), recommend the current count. Each tick an override wins is reported with
   :meth:`ScalingPolicy.overridden`: its count counts as recommended then and once more at the next decision.
6. Clamp to ``[min_replicas, max_replicas]``; a count the bound set is named by it (``max 8``), not by a step limit.

A scale event counts towards the step limits only once it happened: the caller reports one that was not applied
(backend ``none``, a failed call, an unknown outcome) with :meth:`ScalingPolicy.not_applied`. :class:`ScalingPolicy`
keeps the history this needs (feed it observations in time order); :func:`retry_delay` is a failed call's backoff.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.count_words import counted
from gamead_core.queue.depth import LevelDepth
from gamead_core.scaling.reason import action_words, demand_text
from gamead_core.worker.backoff import backoff_ceiling

_RAW_CAP = 1_000_000  #: Upper bound of a raw recommendation (a near-zero rate must not make an absurd integer).
#: Slack for float noise: ``ceil(3.0000000001)`` stays 3, and ``11/10 - 1`` is within a 0.1 tolerance.
_EPS = 1e-9
#: Seconds a per-worker rate measured earlier may stand in for one not measured now (10 min: two scale-down windows)
LAST_RATE_MAX_AGE = 600.0


@dataclass(frozen=True, slots=True)
class Observation:
    """What the autoscaler saw at ``at`` (seconds on a monotonic clock of the caller's choosing)."""

    at: float
    levels: Sequence[LevelDepth]  #: the levels that could be read (their ``pending`` and ``oldest_age``)
    ack_pending: int  #: delivered, not yet acknowledged, summed over the levels (NATS ``num_ack_pending``)
    arrival_rate: float
    completion_rate: float
    per_worker_rate: float | None
    current_replicas: int
    metrics_age_s: float = 0.0
    #: levels that could not be read: their pending ads are missing from ``levels``, so the need is a lower bound
    unreadable_levels: tuple[int, ...] = ()
    #: which rule gave ``per_worker_rate`` (gamead_core.stats.rates.Bound: measured, cpu, latency, mixed); shown
    per_worker_bound: str | None = None
    per_worker_basis: Mapping[str, Any] | None = None  #: how it was derived (``PerWorkerRate.wire()``), kept with it
    rate_window_s: float | None = None  #: seconds ``arrival_rate`` is over (sampler's ``rate_window``; None: unknown)
    quiet_workers: int = 0  #: live workers told to take no new ad (gamead_core.worker.quiet): replicas, no capacity

    @property
    def pending(self) -> int:
        """Ads never delivered, summed over the readable levels (the "backlog" of the reason line)."""
        return sum(max(0, lv.pending) for lv in self.levels)


@dataclass(frozen=True, slots=True)
class ScalingDecision:
    """The replica count to set, why (one human line), and the unclamped need (None when held blind)."""

    desired: int
    reason: str
    raw_recommendation: int | None
    current: int | None = field(default=None, compare=False)  #: the replica count it was decided at
    #: ``{"perWorkerPerSec", "perWorkerBasis"}`` of the rate used when not the observation's (last measured: its
    #: basis with ``lastMeasuredSecondsAgo``; ``initial_per_worker_rate``: bound ``initial``); None otherwise
    per_worker: dict[str, Any] | None = field(default=None, compare=False)


def retry_delay(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based; below 1 counts as 1):
    ``min(cap, base·2^(attempt−1))``, the one formula of :func:`gamead_core.worker.backoff.backoff_ceiling`."""
    return backoff_ceiling(max(1, attempt), base=base, cap=cap)


def required_replicas(*, work: int, arrival_rate: float, per_worker_rate: float, target_drain_seconds: float,
                      urgent_backlog: int = 0, urgent_late: bool = False, max_wait_seconds: float = 10.0) -> int:
    """Workers needed to keep up with arrivals and drain ``work`` in time (see the module docstring)."""
    arrival = max(0.0, arrival_rate)
    if work <= 0 and arrival == 0:
        return 0
    need_rate = arrival + max(0, work) / target_drain_seconds
    if urgent_late:
        need_rate = max(need_rate, arrival + max(0, urgent_backlog) / max_wait_seconds)
    replicas = need_rate / per_worker_rate
    return _RAW_CAP if replicas >= _RAW_CAP else max(1, math.ceil(replicas - _EPS))


def _usable_rate(rate: float | None) -> float | None:
    return rate if rate is not None and math.isfinite(rate) and rate > 0 else None


class ScalingPolicy:
    """HPA-like replica recommendations with memory (stabilisation window, step limits, last rate)."""

    def __init__(self, settings: AutoscalerSettings) -> None:
        self._settings = settings
        self._recommendations: deque[tuple[float, int]] = deque()
        self._events: deque[tuple[float, int]] = deque()  # (at, replicas added (+) or removed (-))
        self._last_rate: tuple[float, float, dict[str, Any]] | None = None  # (ads/s, at, basis) last measured
        self._seeded = False
        self._after_override: int | None = None  # the count that ran under an override seen at the last tick
        self._used: dict[str, Any] | None = None  # the rate the decision under way uses, when not the observation's

    @property
    def settings(self) -> AutoscalerSettings:
        return self._settings

    def decide(self, obs: Observation) -> ScalingDecision:
        s, self._used = self._settings, None
        self._forget_before(obs.at)
        current = max(0, obs.current_replicas)
        if not self._seeded:
            # Nothing known about the last window (first run, new leader): assume the current count was
            # recommended, so a restart never shortcuts the scale-down window. (Only once: later, an empty
            # window means the window has passed — with a 0 s window, at every decision.)
            self._recommendations.append((obs.at, self._clamp(current)))
            self._seeded = True
        if self._after_override is not None:  # in force until some moment since the last tick: count it as now
            self._recommendations.append((obs.at, self._after_override))
            self._after_override = None

        if not obs.metrics_age_s <= s.stale_after_seconds:  # also catches NaN
            return self._hold(obs, f"metrics {obs.metrics_age_s:.1f}s old (> {s.stale_after_seconds:g}s)")

        rate, rate_note, used, last = _usable_rate(obs.per_worker_rate), "", None, self._last_rate
        if rate is not None:
            self._last_rate = (rate, obs.at, {**(obs.per_worker_basis or {"bound": obs.per_worker_bound}),
                                              "windowSeconds": obs.rate_window_s})  # its own window, said when kept
        elif last is not None and obs.at - last[1] <= LAST_RATE_MAX_AGE:
            age = round(obs.at - last[1])
            rate, rate_note, used = last[0], f" (last measured {age}s ago)", {**last[2], "lastMeasuredSecondsAgo": age}
        elif s.initial_per_worker_rate is not None:
            rate, rate_note, used = s.initial_per_worker_rate, " (initial, none measured yet)", {"bound": "initial"}
        self._used = None if used is None else {"perWorkerPerSec": round(rate, 3), "perWorkerBasis": used}
        none_yet = "measured yet" if last is None else f"measured in the last {LAST_RATE_MAX_AGE:g}s"

        backlog = obs.pending
        work = backlog + max(0, obs.ack_pending)
        arrival = max(0.0, obs.arrival_rate) if math.isfinite(obs.arrival_rate) else 0.0
        late = self._oldest_late_urgent(obs)
        urgent_backlog = sum(max(0, lv.pending) for lv in obs.levels if lv.level <= s.urgent_max_level)

        idle = work == 0 and arrival == 0
        unseen = ", ".join(map(str, obs.unreadable_levels))
        what = (f"backlog {counted(backlog, 'ad')}" if backlog else f"{counted(work, 'ad')} delivered" if work
                else "arrivals")
        quiet = max(0, obs.quiet_workers)  # replicas of no capacity: every replica quiet takes no ad, as 0 (probe49)
        if current <= quiet and s.max_replicas > current and (obs.unreadable_levels if idle else rate is None):
            # KEDA's activation: someone must run (and take ads) to measure a rate, or to drain what may wait unseen.
            what = (f"priority {unseen} unreadable" if idle else what) + (f" at {counted(current, 'replica')}, every "
                                                                        "one quiet" if current else " at 0 replicas")
            self._recommendations.append((obs.at, self._clamp(current + 1)))  # the scale-down window remembers it
            return self._finish(obs.at, current, current + 1, f"{what}: activation", [], current + 1)
        if idle:
            raw = 0
            demand = "no backlog, nothing delivered, no arrivals"
        elif rate is None:
            return self._hold(obs, f"{what} but no per-worker rate {none_yet}")
        else:
            raw = required_replicas(
                work=work,
                arrival_rate=arrival,
                per_worker_rate=rate,
                target_drain_seconds=s.target_drain_seconds,
                urgent_backlog=urgent_backlog,
                urgent_late=late is not None,
                max_wait_seconds=s.max_wait_seconds,
            )
            aged = self._oldest_over_age(obs)
            if aged is not None and s.max_age_seconds is not None:
                behind = sum(max(0, lv.pending) for lv in obs.levels if lv.level <= aged.level)
                by_age = required_replicas(work=behind, arrival_rate=arrival, per_worker_rate=rate,
                                           target_drain_seconds=s.max_age_seconds)
                if by_age > raw:
                    raw, late = by_age, aged
            demand = demand_text(s, backlog=backlog, ack_pending=obs.ack_pending, arrival=arrival, late=late, rate=rate,
                                 rate_note=rate_note, bound=obs.per_worker_bound, raw=raw, window=obs.rate_window_s,
                                 quiet=quiet)
            raw += quiet  # raw counts quiet workers: replicas of no capacity

        target = self._clamp(raw)
        within_tolerance = (
            current > 0 and target != current and abs(target / current - 1) <= s.tolerance + _EPS
        )
        recommendation = current if within_tolerance else target
        blind = ""
        if obs.unreadable_levels:  # the need is a lower bound: up is safe, down is not
            blind = f"priority {unseen} unreadable"
            if recommendation < current:
                recommendation, blind = current, blind + ": no scale-down"
        self._recommendations.append((obs.at, recommendation))

        desired, notes = self._stabilise(current, recommendation)
        if blind:
            notes.append(blind)
        if within_tolerance:
            notes.append(f"within {s.tolerance:.0%} tolerance of {target}")
        if raw > s.max_replicas and desired == s.max_replicas:
            notes.append(f"max {s.max_replicas}")
        if raw < s.min_replicas and desired == s.min_replicas:
            notes.append(f"min {s.min_replicas}")
        return self._finish(obs.at, current, desired, demand, notes, raw)

    # --- steps ----------------------------------------------------------------------------------------

    def _stabilise(self, current: int, recommendation: int) -> tuple[int, list[str]]:
        """Apply the up/down step limits and the scale-down window; returns (desired, notes)."""
        s = self._settings
        if recommendation > current:
            # The count at the period's start, never below 0: the count may have been cut behind the policy's
            # back (an override, kubectl, another controller) since its own scale-ups of this period.
            start = max(0, current - sum(d for _, d in self._events if d > 0))
            by_percent = math.ceil(start * (1 + s.scale_up_max_percent / 100) - _EPS)
            limit = max(start + s.scale_up_max_step, by_percent)
            desired = max(current, min(recommendation, limit))
            if desired == current:
                return desired, [f"scale-up step for this {s.period_seconds:g}s period used"]
            if desired < recommendation:
                return desired, [f"step limit +{desired - current}"]
            return desired, []
        if recommendation < current:
            highest = max(r for _, r in self._recommendations)
            stabilised = min(current, highest)
            notes = []
            if highest > recommendation:
                notes.append(
                    f"highest recommendation in last {s.scale_down_stabilization_seconds:g}s is {highest}"
                )
            if stabilised >= current:
                return current, notes
            start = current + sum(-d for _, d in self._events if d < 0)
            limit = start - s.scale_down_max_step
            desired = min(current, max(stabilised, limit))
            if desired == current:
                notes.append(f"scale-down step for this {s.period_seconds:g}s period used")
            elif desired > stabilised:
                notes.append(f"step limit -{current - desired}")
            return desired, notes
        return current, []

    def not_applied(self, decision: ScalingDecision) -> None:
        """``decision`` (the last one :meth:`decide` returned) did not change the replica count (backend
        ``none``, a failed call, or not surely: no answer and no read back): its scale event must not count
        towards the step limits."""
        if decision.desired != decision.current and self._events:
            self._events.pop()

    def landed(self, at: float, delta: int) -> None:
        """A call of ``delta`` replicas (+ up, - down) sent at ``at`` (:attr:`Observation.at`'s clock), reported
        :meth:`not_applied`, landed later: its scale event counts towards the step limits from ``at``."""
        self._events = deque(sorted([*self._events, (at, delta)]))

    def overridden(self, at: float, running: int) -> None:
        """An operator's override was in force at ``at`` (the clock of :attr:`Observation.at`, seconds) and
        ``running`` replicas ran under it: the scale-down window counts them as recommended at ``at`` and at the
        next :meth:`decide` (scale-up stays immediate). Call it at every tick the override wins, in time order."""
        self._forget_before(at)
        self._recommendations.append((at, max(0, running)))
        self._after_override = max(0, running)
        self._seeded = True

    def _hold(self, obs: Observation, why: str) -> ScalingDecision:
        current = max(0, obs.current_replicas)
        desired = self._clamp(current)
        s = self._settings
        notes = [] if desired == current else [f"clamped to [{s.min_replicas}, {s.max_replicas}]"]
        self._recommendations.append((obs.at, desired))  # holding is recommending the current count
        return self._finish(obs.at, current, desired, why, notes, None)

    def _finish(
        self, at: float, current: int, desired: int, demand: str, notes: list[str], raw: int | None
    ) -> ScalingDecision:
        clamped = self._clamp(desired)
        if clamped != desired:  # the bound, not a step limit, set the count: say so (not "step limit -1")
            s = self._settings
            bound = f"max {s.max_replicas}" if clamped == s.max_replicas else f"min {s.min_replicas}"
            notes = [n for n in notes if not n.startswith(("step limit", "scale-up", "scale-down"))] + [bound]
        desired = clamped
        if desired != current:
            self._events.append((at, desired - current))
        action = action_words(current, desired)
        suffix = f" ({'; '.join(notes)})" if notes else ""
        return ScalingDecision(desired=desired, reason=f"{demand} → {action}{suffix}", raw_recommendation=raw,
                               current=current, per_worker=self._used)

    # --- helpers --------------------------------------------------------------------------------------

    def _clamp(self, n: int) -> int:
        return min(self._settings.max_replicas, max(self._settings.min_replicas, n))

    def _forget_before(self, now: float) -> None:
        window = self._settings.scale_down_stabilization_seconds
        while self._recommendations and self._recommendations[0][0] <= now - window:
            self._recommendations.popleft()
        while self._events and self._events[0][0] <= now - self._settings.period_seconds:
            self._events.popleft()

    def _oldest_late_urgent(self, obs: Observation) -> LevelDepth | None:
        s = self._settings
        urgent = [
            lv
            for lv in obs.levels
            if lv.level <= s.urgent_max_level and (lv.oldest_age or 0.0) > s.max_wait_seconds  # held ads too
        ]
        return max(urgent, key=lambda lv: (lv.oldest_age or 0.0, -lv.level)) if urgent else None

    def _oldest_over_age(self, obs: Observation) -> LevelDepth | None:
        """The least urgent level whose oldest waiting ad (pending, or held unstarted) waited past max_age_seconds."""
        limit = self._settings.max_age_seconds
        if limit is None:
            return None
        over = [lv for lv in obs.levels if (lv.oldest_age or 0.0) > limit]
        return max(over, key=lambda lv: lv.level) if over else None
