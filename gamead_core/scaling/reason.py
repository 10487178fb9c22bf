"""The demand half of the policy's reason line, pure: what the queue holds and what it needs, in words.

``backlog 5,000 ads (oldest p1 12.3s > 10s) + 40 delivered, arriving 2.0 ads/s (last minute) at 40.0 ads/s per
worker (measured) needs 8 workers`` — :func:`demand_text` builds it from figures
:class:`~gamead_core.scaling.policy.ScalingPolicy` already worked out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.count_words import counted
from gamead_core.queue.depth import LevelDepth
from gamead_core.rate_text import rate_figure
from gamead_core.rate_window import window_words
from gamead_core.registry.wire import NodeInfo

#: How the reason line names the rule behind a per-worker rate (gamead_core.stats.rates.per_worker_capacity).
BOUND_NOTES = {"measured": " (measured)", "cpu": " (CPU-bound)", "latency": " (latency-bound)",
               "mixed": " (CPU- and latency-bound workers)"}


def action_words(current: int, desired: int) -> str:
    """The end of a reason line, what the autoscaler does: ``scale 2→4 workers``, ``hold 2 workers``. Pure."""
    return f"scale {current}→{counted(desired, 'worker')}" if desired != current else \
        f"hold {counted(current, 'worker')}"


def demand_text(s: AutoscalerSettings, *, backlog: int, ack_pending: int, arrival: float, late: LevelDepth | None,
                rate: float, rate_note: str, bound: str | None, raw: int, window: float | None = None,
                quiet: int = 0) -> str:
    """``backlog`` (ads pending), ``ack_pending`` (ads delivered to workers, not acknowledged: running, buffered
    or being written — not "in flight": a prefetched ad waits), ``arrival`` (ads/s), the level that is
    late (``late``, None: none; with nothing pending its age is of ads held unstarted, which the line says), the
    per-worker ``rate`` (ads/s) with its ``rate_note`` (``" (last measured)"``…; empty: the ``bound`` that gave it
    is named), the raw recommendation ``raw`` (replicas, the quiet ones not counted) and ``window``, the seconds
    ``arrival`` is over (None: unknown, said as the nominal minute) → one line without a newline. The arrival rate
    says its window (attack43b F5: ``arriving 2.2 ads/s`` named none; it is the throughput panel's ``last minute``
    one). ``quiet``: the quiet workers, replicas of no capacity, said after ``raw`` (``needs 2 workers + 1 quiet``)."""
    parts = [f"backlog {counted(backlog, 'ad')}"]
    if late is not None:
        urgent = late.level <= s.urgent_max_level and (late.oldest_age or 0.0) > s.max_wait_seconds
        limit = s.max_wait_seconds if urgent or s.max_age_seconds is None else s.max_age_seconds
        # nothing pending there: the age is of ads workers hold unstarted, counted in "delivered" already; they only
        # mark the level late, the urgent/max-age term adds the pending ads of levels 1..p alone (review30 F2)
        held = ", held unstarted: adds no backlog" if late.pending <= 0 else ""
        parts.append(f" (oldest p{late.level} {(late.oldest_age or 0.0):.1f}s > {limit:g}s{held})")
    if ack_pending > 0:
        parts.append(f" + {ack_pending:,} delivered")
    if arrival > 0:
        parts.append(f", arriving {rate_figure(arrival)} ads/s ({window_words(window)})")
    if not rate_note and bound in BOUND_NOTES:
        rate_note = BOUND_NOTES[bound]
    parts.append(f" at {rate_figure(rate)} ads/s per worker{rate_note} needs {counted(raw, 'worker')}")
    if quiet:
        parts.append(f" + {quiet} quiet")
    return "".join(parts)


def every_quiet(workers: Iterable[NodeInfo] | None) -> str | None:
    """``every live worker (2) is quiet: gamead workers resume --all`` when each live worker of ``workers`` (the
    registry's, ``quiet`` and ``state``) is quiet, as ``gamead doctor`` says it; else None (none live too). Pure."""
    live = [w for w in workers or () if w.state not in ("draining", "gone")]
    if not live or not all(w.quiet for w in live):
        return None
    return f"every live worker ({len(live)}) is quiet: gamead workers resume --all"


#: The phrase of each rule's reason line (:class:`~gamead_core.scaling.policy.ScalingPolicy` and the override), in
#: the order :func:`reason_kind` looks for them.
_KINDS = (("manual override to ", "override"), (": activation", "activation"),
          ("no per-worker rate measured", "no rate"), ("no backlog, nothing delivered, no arrivals", "idle"),
          (" ads/s per worker", "demand"))
_STALE = re.compile(r"\bmetrics [0-9.]+s old \(")


def reason_kind(reason: str | None) -> str:
    """Which rule a decision's ``reason`` line comes from: ``override``, ``activation``, ``no rate``, ``stale``,
    ``idle`` (no work, no arrivals), ``demand`` (backlog, delivered or arrivals weighed against a per-worker
    rate), else the line itself (a failed tick names what failed). Pure. Two ticks of one kind may differ in
    their figures only; the decision log folds only ticks of one kind (:func:`~gamead_core.scaling.store.
    record_decision`)."""
    text = reason or ""
    if _STALE.search(text):
        return "stale"
    return next((kind for phrase, kind in _KINDS if phrase in text), text)
