"""Which of a node's own queue limits a start may write over the live work streams and level consumers.

The rule (attack31c F3, F6: the last process to start wrote its own ``queue.*`` over the fleet's, silently): the
work streams' ``max_msgs``, ``max_bytes``, ``duplicate_window`` and the level consumers' ``ack_wait`` are the
fleet's, not one node's. A start (worker, ``gamead serve``, ``gamead up``)

* applies a *raise* of one of them (more room, a longer window, a longer ``ack_wait``): it refuses and drops
  nothing, and a worker that paces its in-progress acks by a shorter ``ack_wait`` only acks more often;
* keeps the live value of a *lowering* (it could refuse every submit on every node, or get healthy workers'
  long analyses redelivered) and says so, once, in a WARNING naming the setting, the live value and its own;
* lowers one only with ``queue.lower_limits: true`` (the operator's word that every node now runs the new
  value), and even then never a stream's ``max_msgs``/``max_bytes`` below what the stream holds.

Any difference left between a node's own setting and the live value is named: :func:`drift_line`, in the start's
WARNING, ``/readyz`` ``checks.topology`` (``degraded: …``) and ``/v1/stats``. Other limits (the fields gamead
fixes itself, and the other streams and buckets) are applied as before. Pure, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gamead_core import names

#: the guarded limit fields → the setting they come from
GUARDED = {"max_msgs": "queue.max_msgs", "max_bytes": "queue.max_bytes",
           "duplicate_window": "queue.duplicate_window", "ack_wait": "queue.ack_wait"}


def guarded(kind: str, name: str) -> bool:
    """True for the objects whose limits the rule guards: a work stream (any partition) or a level consumer."""
    if kind == "consumer":
        return True
    return kind == "stream" and names.partition_of_stream(name) is not None


def _room(field: str, value: object) -> float:
    """``value`` on one scale where more is looser: -1, 0 or None (unlimited) is infinite for the stream limits."""
    if value is None:
        return math.inf
    number = float(value)  # type: ignore[arg-type]
    if field in ("max_msgs", "max_bytes") and number <= 0:
        return math.inf
    return number


def _shown(field: str, value: object) -> str:
    room = _room(field, value)
    if room == math.inf:
        return "unlimited"
    return f"{room:g} s" if field in ("ack_wait", "duplicate_window") else f"{int(room):,}"


@dataclass(frozen=True)
class Drift:
    """A guarded limit whose live value differs from this node's own: the object (``label``), the field, both
    values, and ``why`` a start kept the live one (None: only seen, by a check that changes no limit)."""

    label: str
    field: str
    live: object
    own: object
    why: str | None = None

    def line(self) -> str:
        """``queue.max_msgs: live 50 on stream GAMEAD_ADS, this node's 1,000,000``."""
        return drift_line(self.field, self.live, self.own, self.label)


def drift_line(field: str, live: object, own: object, where: str) -> str:
    """One difference, for logs and ``/readyz``: the setting, the live value and where, this node's value."""
    return f"{GUARDED.get(field, field)}: live {_shown(field, live)} on {where}, this node's {_shown(field, own)}"


def summarize(drifts: tuple[Drift, ...], *, why: bool = False) -> tuple[str, ...]:
    """One line per (setting, live value, own value[, why]), naming every object it holds for (the five level
    consumers share one line), in first-seen order. Pure."""
    groups: dict[tuple[str, str, str, str | None], list[str]] = {}
    for d in drifts:
        key = (d.field, _shown(d.field, d.live), _shown(d.field, d.own), d.why if why else None)
        groups.setdefault(key, []).append(d.label)
    lines = []
    for (f, live, own, because), labels in groups.items():
        kind = labels[0].split(" ", 1)[0]
        where = labels[0] if len(labels) == 1 else f"{kind}s " + ", ".join(lb.split(" ", 1)[-1] for lb in labels)
        lines.append(f"{GUARDED.get(f, f)}: live {live} on {where}, this node's {own}"
                     + (f": kept the live value ({because})" if because else ""))
    return tuple(lines)


#: why a start keeps the live value of a lowering
NEVER_LOWERED = ("a start never lowers it; set it on every node, then start one node with queue.lower_limits: true, "
                 "README: Topology")


def split(label: str, limits: tuple[str, ...], live: object, own: object, *, lower: bool, held_msgs: int = 0,
          held_bytes: int = 0) -> tuple[tuple[str, ...], tuple[Drift, ...]]:
    """``(fields to apply, lowerings kept)`` for the differing ``limits`` of one guarded object (``live``: its
    config on the server; ``own``: the node's; ``held_*``: what a work stream stores now). Unguarded fields are
    always applied; a guarded raise is applied; a guarded lowering only with ``lower`` (``queue.lower_limits``)
    and never below what the stream holds. Pure."""
    apply: list[str] = []
    kept: list[Drift] = []
    for field in limits:
        if field not in GUARDED:
            apply.append(field)
            continue
        have, want = getattr(live, field, None), getattr(own, field, None)
        if _room(field, want) >= _room(field, have):
            apply.append(field)
            continue
        below = {"max_msgs": held_msgs, "max_bytes": held_bytes}.get(field, 0)
        if not lower:
            kept.append(Drift(label, field, have, want, NEVER_LOWERED))
        elif below and _room(field, want) < below:
            what = "messages" if field == "max_msgs" else "bytes"
            kept.append(Drift(label, field, have, want, f"the stream holds {below:,} {what}: lowering it below that "
                                                        f"would refuse every submit; let the workers drain it first"))
        else:
            apply.append(field)
    return tuple(apply), tuple(kept)


def drift(label: str, limits: tuple[str, ...], live: object, own: object) -> tuple[Drift, ...]:
    """The guarded fields among ``limits`` (which differ) as :class:`Drift` items, seen only. Pure."""
    return tuple(Drift(label, f, getattr(live, f, None), getattr(own, f, None)) for f in limits if f in GUARDED)


__all__ = ["GUARDED", "NEVER_LOWERED", "Drift", "drift", "drift_line", "guarded", "split", "summarize"]
