"""Which of a node's own limits a start may write over the live streams, buckets and level consumers.

The rule (attack31c F3, F6: the last process to start wrote its own ``queue.*`` over the fleet's, silently; and
the whole kind of it, fix32lim: its own ``dlq.max_msgs``, ``records.max_bytes``… too): the limits a node's
settings give the objects every node shares (:data:`SETTINGS`: the work streams' ``max_msgs``, ``max_bytes``,
``duplicate_window``, the level consumers' ``ack_wait``, the DLQ's and the audit stream's count, size, age and
window, the record bucket's size and age, the registry's ttl, the jobs bucket's size and retention) are the
fleet's, not one node's. A start (worker, ``gamead serve``, ``gamead up``)

* applies a *raise* of one of them (more room, a longer age or window, a longer ``ack_wait``): it refuses and drops
  nothing, and a worker that paces its in-progress acks by a shorter ``ack_wait`` only acks more often;
* keeps the live value of a *lowering* (it could refuse every submit on every node, drop dead letters, audit
  records or the records of live ads, or get healthy workers' long analyses redelivered) and says so, once, in a
  WARNING naming the setting, the live value and its own;
* lowers one only with ``queue.lower_limits: true`` (the operator's word that every node now runs the new
  value), and even then never a ``max_msgs``/``max_bytes`` below what the stream or bucket holds (JetStream would
  drop what does not fit, or refuse every new message).

Any difference left between a node's own setting and the live value is named: :func:`drift_line`, in the start's
WARNING, ``/readyz`` ``checks.topology`` (``degraded: …``) and ``/v1/stats``. Other limits (the fields gamead
fixes itself, and the buckets no setting sizes) are applied as before. Pure, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gamead_core import names

#: the work streams' guarded limit fields → the setting they come from (every partition's)
GUARDED = {"max_msgs": "queue.max_msgs", "max_bytes": "queue.max_bytes",
           "duplicate_window": "queue.duplicate_window", "ack_wait": "queue.ack_wait"}

#: the other shared objects' guarded fields (by stream or bucket name) → the setting each comes from. The record
#: bucket's ``duplicate_window`` (min(120 s, records.max_age)) and the constant limits of the health, leases and
#: scaling buckets are no setting: applied as before.
SETTINGS: dict[str, dict[str, str]] = {
    names.DLQ_STREAM: {"max_msgs": "dlq.max_msgs", "max_age": "dlq.max_age",
                       "duplicate_window": "queue.duplicate_window"},
    names.AUDIT_STREAM: {"max_msgs": "audit.max_msgs", "max_bytes": "audit.max_bytes", "max_age": "audit.max_age",
                         "duplicate_window": "queue.duplicate_window"},
    names.ADS_BUCKET: {"max_bytes": "records.max_bytes", "max_age": "records.max_age"},
    names.REGISTRY_BUCKET: {"max_age": "registry.ttl"},
    names.JOBS_BUCKET: {"max_bytes": "jobs.max_bytes", "max_age": "jobs.retention"},
}

#: what lowering a count or size below what an object holds would do (the work streams': refuse every submit)
_BELOW = {
    names.DLQ_STREAM: "refuse every new dead letter (the DLQ's entries wait for a replay or a purge)",
    names.AUDIT_STREAM: "drop the oldest audit records",
    names.ADS_BUCKET: "drop the oldest records, live ads' among them; let the queue drain and old records expire first",
    names.JOBS_BUCKET: "refuse or drop job documents; let old jobs expire first",
}


def fields_of(kind: str, name: str) -> dict[str, str]:
    """The guarded limit fields of the object ``kind`` ``name`` (a stream's or bucket's name, a consumer's) → the
    setting each comes from; empty for an object whose limits are applied as before. Pure."""
    if kind == "consumer":
        return {"ack_wait": GUARDED["ack_wait"]}
    if kind == "stream" and names.partition_of_stream(name) is not None:
        return {k: v for k, v in GUARDED.items() if k != "ack_wait"}
    return SETTINGS.get(name, {})


def guarded(kind: str, name: str) -> bool:
    """True for the objects whose limits the rule guards: a work stream (any partition), a level consumer, and the
    DLQ, audit, record, registry and jobs stores (:data:`SETTINGS`)."""
    return bool(fields_of(kind, name))


def setting(label: str, field: str) -> str:
    """The setting ``field`` of the object ``label`` (``stream GAMEAD_DLQ``) comes from (the field if none)."""
    kind, _, name = label.partition(" ")
    return fields_of(kind, name).get(field, field)


def _room(field: str, value: object) -> float:
    """``value`` on one scale where more is looser: -1, 0 or None (unlimited) is infinite for the stream limits."""
    if value is None:
        return math.inf
    number = float(value)  # type: ignore[arg-type]
    if field in ("max_msgs", "max_bytes", "max_age") and number <= 0:
        return math.inf
    return number


def _shown(field: str, value: object) -> str:
    room = _room(field, value)
    if room == math.inf:
        return "unlimited"
    if field in ("ack_wait", "duplicate_window", "max_age"):
        return f"{int(room):,} s" if room == int(room) else f"{room:g} s"
    return f"{int(room):,}"


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
    """One difference, for logs and ``/readyz``: the setting, the live value and ``where`` (the object's label), this
    node's value."""
    return f"{setting(where, field)}: live {_shown(field, live)} on {where}, this node's {_shown(field, own)}"


def summarize(drifts: tuple[Drift, ...], *, why: bool = False) -> tuple[str, ...]:
    """One line per (setting, live value, own value[, why]), naming every object it holds for (the five level
    consumers share one line), in first-seen order. Pure."""
    groups: dict[tuple[str, str, str, str, str | None], list[str]] = {}
    for d in drifts:
        kind = d.label.split(" ", 1)[0]
        key = (setting(d.label, d.field), kind, _shown(d.field, d.live), _shown(d.field, d.own), d.why if why else None)
        groups.setdefault(key, []).append(d.label)
    lines = []
    for (name, kind, live, own, because), labels in groups.items():
        where = labels[0] if len(labels) == 1 else f"{kind}s " + ", ".join(lb.split(" ", 1)[-1] for lb in labels)
        lines.append(f"{name}: live {live} on {where}, this node's {own}"
                     + (f": kept the live value ({because})" if because else ""))
    return tuple(lines)


#: why a start keeps the live value of a lowering
NEVER_LOWERED = ("a start never lowers it; set it on every node, then start one node with queue.lower_limits: true, "
                 "README: Topology")


def split(label: str, limits: tuple[str, ...], live: object, own: object, *, lower: bool, held_msgs: int = 0,
          held_bytes: int = 0) -> tuple[tuple[str, ...], tuple[Drift, ...]]:
    """``(fields to apply, lowerings kept)`` for the differing ``limits`` of one guarded object (``label``: ``kind
    name``; ``live``: its config on the server; ``own``: the node's; ``held_*``: what its stream stores now).
    Unguarded fields are always applied; a guarded raise is applied; a guarded lowering only with ``lower``
    (``queue.lower_limits``) and never a count or size below what the stream holds. Pure."""
    apply: list[str] = []
    kept: list[Drift] = []
    kind, _, name = label.partition(" ")
    fields = fields_of(kind, name)
    for field in limits:
        if field not in fields:
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
            does = _BELOW.get(name, "refuse every submit; let the workers drain it first")
            kept.append(Drift(label, field, have, want, f"the {'bucket' if kind == 'bucket' else 'stream'} holds "
                                                        f"{below:,} {what}: lowering it below that would {does}"))
        else:
            apply.append(field)
    return tuple(apply), tuple(kept)


def drift(label: str, limits: tuple[str, ...], live: object, own: object) -> tuple[Drift, ...]:
    """The guarded fields among ``limits`` (which differ) as :class:`Drift` items, seen only. Pure."""
    kind, _, name = label.partition(" ")
    fields = fields_of(kind, name)
    return tuple(Drift(label, f, getattr(live, f, None), getattr(own, f, None)) for f in limits if f in fields)


__all__ = ["GUARDED", "NEVER_LOWERED", "SETTINGS", "Drift", "drift", "drift_line", "fields_of", "guarded", "setting",
           "split", "summarize"]
