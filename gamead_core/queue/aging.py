"""Priority with aging: which level a worker should pull from next. Pure functions, no I/O.

Each non-empty level scores ``level − head_age / aging_step``; the lowest score wins, ties go to the more
urgent level. An ad therefore climbs one level per ``aging_step`` seconds of waiting: a priority-5 ad that
has waited ``4 × aging_step`` competes with a fresh priority-1 ad, and one that has waited longer beats it.
Nothing starves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LevelHead:
    """What a worker knows about one level: how many ads wait and how old the oldest is."""

    level: int
    pending: int
    head_age: float  # seconds the oldest waiting ad has waited; 0 if unknown
    unacked: int = 0  # delivered but not acknowledged: in flight, or due back (timed out / nak'ed)


def level_score(level: int, head_age: float, aging_step: float) -> float:
    """The aging score of a level; lower is served first."""
    if aging_step <= 0:
        raise ValueError("aging_step must be positive")
    return level - max(head_age, 0.0) / aging_step


def pull_order(heads: Mapping[int, LevelHead] | list[LevelHead], aging_step: float) -> list[int]:
    """Non-empty levels in the order a worker should try them (best first)."""
    items = heads.values() if isinstance(heads, Mapping) else heads
    ready = [h for h in items if h.pending > 0]
    ready.sort(key=lambda h: (level_score(h.level, h.head_age, aging_step), h.level))
    return [h.level for h in ready]


def effective_level(level: int, head_age: float, aging_step: float, top: int = 1) -> int:
    """The level an ad currently competes at after aging (never better than ``top``). For display."""
    return max(top, int(level - max(head_age, 0.0) // aging_step))
