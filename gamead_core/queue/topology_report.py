"""What a topology check found and did, per object (:class:`ObjectState`), and in all (:class:`TopologyReport`):
created, updated, unusable, and the guarded limits whose live value differs from this node's own
(:mod:`gamead_core.queue.limit_rule`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from gamead_core.errors import GameadError
from gamead_core.queue.limit_rule import Drift, summarize
from gamead_core.queue.topology_plan import Wanted

Outcome = Literal["ok", "created", "updated", "incompatible", "failed"]


@dataclass(frozen=True)
class ObjectState:
    """What became of one object in a check."""

    wanted: Wanted
    outcome: Outcome
    detail: str | None = None  #: the incompatibility, the failure, or the limits updated
    error: GameadError | None = field(default=None, compare=False, repr=False)
    #: guarded limits left differing from this node's config (a lowering kept, or only seen)
    drift: tuple[Drift, ...] = ()

    @property
    def label(self) -> str:
        return self.wanted.label

    def as_dict(self) -> dict[str, object]:
        return {"object": self.label, "kind": self.wanted.kind, "name": self.wanted.name,
                "essential": self.wanted.essential, "state": self.outcome, "detail": self.detail}


@dataclass(frozen=True)
class TopologyReport:
    """Per object, what a check found and did; ``calls`` = JetStream API calls it made."""

    objects: tuple[ObjectState, ...]
    calls: int = 0
    #: each stream the check's listing showed → when it was made (:func:`gamead_core.store.retention.bucket_scope`)
    made_at: Mapping[str, datetime | None] = field(default_factory=dict)

    @property
    def created(self) -> tuple[str, ...]:
        return tuple(o.label for o in self.objects if o.outcome == "created")

    @property
    def updated(self) -> tuple[str, ...]:
        return tuple(o.label for o in self.objects if o.outcome == "updated")

    @property
    def drift(self) -> tuple[Drift, ...]:
        """Every guarded limit whose live value differs from this node's own (:mod:`.limit_rule`)."""
        return tuple(d for o in self.objects for d in o.drift)

    def live_values(self, field: str) -> dict[tuple[str, str], float]:
        """``(stream, name)`` → the live value (a number) of ``field`` on each object where it differs from this
        node's own after the check (a lowering kept, or only seen): e.g. the level consumers' ``ack_wait`` a worker
        paces by (:meth:`gamead_core.worker.keepalive.AckWaitKeepAlive.seed`). Elsewhere the live value is this
        node's own."""
        return {(o.wanted.stream, o.wanted.name): float(d.live) for o in self.objects for d in o.drift
                if d.field == field and isinstance(d.live, (int, float))}

    def drift_lines(self, *, why: bool = False) -> tuple[str, ...]:
        """:attr:`drift`, one line per setting and value (the five level consumers share one); with ``why``, why
        the start kept the live value (of those it kept)."""
        return summarize(self.drift, why=why)

    @property
    def problems(self) -> tuple[ObjectState, ...]:
        """Objects gamead cannot use as they are: incompatible, or missing and not created."""
        return tuple(o for o in self.objects if o.outcome in ("incompatible", "failed"))

    @property
    def essential_ok(self) -> bool:
        """No problem with an object on the submit path (the work stream, the ad bucket)."""
        return not any(o.wanted.essential for o in self.problems)

    @property
    def essential_incompatible(self) -> tuple[ObjectState, ...]:
        return tuple(o for o in self.problems if o.wanted.essential and o.outcome == "incompatible")



__all__ = ["ObjectState", "Outcome", "TopologyReport"]
