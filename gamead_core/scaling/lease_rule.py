"""The leader lease's value and its rule, pure (no I/O): :func:`lease_decision` says what a candidate does about
the lease it read; :class:`gamead_core.scaling.lease.LeaseKeeper` applies it against the bucket (its module
docstring tells the whole rule, and where it comes from).

A follower judges a lease expired two ways (attack31b F2): by the holder's ``expiresAt`` (nats-server's time, as
every node samples it: :mod:`gamead_core.clock`), and by its own monotonic clock: a lease that has not changed (the same KV revision) for longer than a TTL
is expired whatever ``expiresAt`` says (:func:`silent`; a TTL: the holder's written one, at least the follower's
own and at most 10 of them, :func:`trust_cap`), so a holder that died with ``expiresAt`` far ahead (a
clock ahead, a hand edit, a bug) keeps nobody a follower for longer than that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from gamead_core.scaling.stacks import read_stack
from gamead_core.scaling.unusable import said_unusable, usable_time

#: The key of the autoscaler's lease.
AUTOSCALER_LEASE = "autoscaler"
#: The lease lasts this many autoscaler intervals: a holder misses two renewals before it is replaced.
TTL_INTERVALS = 3.0
#: A follower checks again this long after the lease it saw is due to expire.
_SLACK = 0.05

Action = Literal["acquire", "renew", "take", "follow"]


def lease_ttl(interval: float) -> float:
    """The lease TTL for an autoscaler that decides every ``interval`` seconds (3 × interval)."""
    return TTL_INTERVALS * interval


@dataclass(frozen=True, slots=True)
class Lease:
    """The value of a lease key (epoch seconds)."""

    holder: str
    acquired_at: float
    renewed_at: float
    expires_at: float
    acts: bool = True  #: the holder changes the worker count (not advice only)
    #: the holder's ``gamead up`` stack (its data dir; None: not a ``gamead up``, or an older writer): whose workers
    #: it moves (:mod:`gamead_core.scaling.stacks`)
    stack: str | None = None

    @property
    def ttl(self) -> float:
        return self.expires_at - self.renewed_at

    def expired(self, now: float) -> bool:
        return not self.holder or self.expires_at <= now

    def to_json(self) -> bytes:
        return orjson.dumps({
            "holder": self.holder,
            "acquiredAt": self.acquired_at,
            "renewedAt": self.renewed_at,
            "expiresAt": self.expires_at,
            "ttl": round(self.ttl, 3),
            "acts": self.acts,
            **({"stack": self.stack} if self.stack else {}),  # an older reader ignores it
        })

    @classmethod
    def from_json(cls, data: bytes | None) -> Lease | None:
        """The lease in ``data``; None for a missing or unreadable value (treated as no lease)."""
        if not data:
            return None
        try:
            raw: Any = orjson.loads(data)
            lease = cls(
                holder=str(raw.get("holder") or ""),
                acquired_at=float(raw["acquiredAt"]),
                renewed_at=float(raw["renewedAt"]),
                expires_at=float(raw["expiresAt"]),
                acts=raw.get("acts") is not False,
                stack=read_stack(raw.get("stack")),
            )
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            return said_unusable(AUTOSCALER_LEASE, data)
        if not all(map(usable_time, (lease.acquired_at, lease.renewed_at, lease.expires_at))):
            return said_unusable(AUTOSCALER_LEASE, data)  # past year 9999 too (attack31b F5)
        return lease


@dataclass(frozen=True, slots=True)
class LeaseDecision:
    """What to do about the lease: the value to write (None when following) and when to look again."""

    action: Action
    write: Lease | None
    check_in: float


#: A follower trusts a holder's written ttl up to this many of its own TTLs (:func:`trust_cap`).
TRUST_TTLS = 10.0


def trust_cap(ttl: float) -> float:
    """The longest written ttl (seconds) a node whose own lease TTL is ``ttl`` believes: ``10 × ttl``. Nodes whose
    intervals differ up to 10× (a config rollout 30 → 5 s is 6×) keep each other's live leases; a hand-edited
    ``expiresAt`` an hour ahead holds followers 10 TTLs (150 s at the default 5 s interval), not the hour (review31
    R4: a follower may not take a live holder's lease, nor wait for a hand edit). A holder whose clock is ahead
    writes its ``renewedAt`` ahead too, so its written ttl stays its own and needs no cap. Pure."""
    return TRUST_TTLS * ttl


def silence_window(written_ttl: float, ttl: float) -> float:
    """Seconds a lease of another, whose holder wrote ``written_ttl``, may stay unchanged before a reader whose own
    TTL is ``ttl`` takes it as expired, on the reader's monotonic clock: ``max(ttl, min(written_ttl,
    trust_cap(ttl)))``. A live holder writes at least once per its written ttl, so waiting for it never takes a live
    holder's lease, whatever the two nodes' settings (review31 R4: a follower with ttl 15 took a renewing holder's
    ttl-60 lease); the cap bounds a hand-written or buggy one (:func:`trust_cap`). The one rule of the leader leases
    (:func:`silent_after`) and the job leases (:func:`gamead_core.jobs.policy.lease_window`). Pure."""
    return max(ttl, min(written_ttl, trust_cap(ttl)))


def silent_after(current: Lease, ttl: float) -> float:
    """:func:`silence_window` of ``current``, its written ttl ``expiresAt − renewedAt`` (every ``ttl / 3`` the
    autoscaler renews), ``ttl`` the follower's own. Pure."""
    return silence_window(current.ttl, ttl)


#: Seconds a lease's renewal time may lie ahead of ``now`` before it is a clock ahead, not the reading's lag.
CLOCK_SLACK = 2.0
#: Why a lease not expired has no live holder (:func:`stuck_why`).
StuckWhy = Literal["clock_ahead", "ttl_too_long", "holder_gone"]


def stuck_why(*, renewed_ahead: float, written_ttl: float, ttl: float | None,
              registered: bool | None, gone_unproven: bool = False) -> StuckWhy | None:
    """Why a lease that has not expired has no live holder, or None when it may have one: the one rule of the
    doctor's leader leases (:func:`gamead_core.doctor.leases.stuck_text`) and job leases
    (:func:`gamead_core.jobs.policy.stuck_text`) (attack31b F2, review31 R5, fix32). ``registered``: whether its
    holder has a live registry entry (None: not known, the registry unread or a holder that keeps none). A
    registered holder is never stuck: it heartbeats, and a lease it stops renewing is taken by its followers' own
    silence rule (:func:`silence_window`). Otherwise it is stuck when its renewal time lies more than
    :data:`CLOCK_SLACK` ahead of now (``renewed_ahead``, s: ``"clock_ahead"``, its holder's clock is ahead or it was
    written by hand), its ``written_ttl`` (s) is longer than any node trusts (:func:`trust_cap` of ``ttl``, the
    reader's TTL for it; None: no cap) plus the slack (``"ttl_too_long"``: by hand or a bug), or its holder is not
    registered (False: ``"holder_gone"``) — unless ``gone_unproven``: the registry's bucket is younger than its
    entries' ``max_age`` and may have lost a live holder's entry (:func:`gamead_core.doctor.leases.absence_unproven`,
    lease51); the two other reasons are judged all the same. Pure."""
    if registered:
        return None
    if renewed_ahead > CLOCK_SLACK:
        return "clock_ahead"
    if ttl is not None and written_ttl > trust_cap(ttl) + CLOCK_SLACK:
        return "ttl_too_long"
    return "holder_gone" if registered is False and not gone_unproven else None


def silent(current: Lease, unchanged_for: float, ttl: float) -> bool:
    """True when ``current`` has not changed for ``unchanged_for`` seconds (monotonic, as the follower measured
    it), longer than :func:`silent_after`: its holder stopped renewing, whatever its ``expiresAt`` says. Pure."""
    return unchanged_for > silent_after(current, ttl)


def lease_decision(now: float, current: Lease | None, me: str, ttl: float, acts: bool = True,
                   held: bool = True, unchanged_for: float = 0.0) -> LeaseDecision:
    """The pure lease rule (see :mod:`gamead_core.scaling.lease`). ``now`` is epoch seconds; ``ttl`` > 0;
    ``acts``: the candidate changes the worker count (not advice only); ``held``: the candidate still counted
    itself leader (its own deadline had not passed): without it, its own lease starts a new term;
    ``unchanged_for``: seconds the candidate has seen ``current`` unchanged (its KV revision; monotonic clock):
    a lease of another unchanged for longer than :func:`silent_after` is expired, whatever its ``expiresAt``.
    Raises ValueError for a ``ttl`` that is not positive or an empty ``me``."""
    if not ttl > 0:
        raise ValueError(f"ttl must be positive, not {ttl!r}")
    if not me:
        raise ValueError("the candidate needs a non-empty id")
    renew_every = ttl / TTL_INTERVALS
    if current is None or not current.holder:
        return LeaseDecision("acquire", Lease(me, now, now, now + ttl, acts), renew_every)
    if current.holder == me and (not held or current.expired(now)):  # a lapse: a new term
        return LeaseDecision("acquire", Lease(me, now, now, now + ttl, acts), renew_every)
    if current.holder == me:
        return LeaseDecision("renew", Lease(me, current.acquired_at, now, now + ttl, acts), renew_every)
    if acts and not current.acts:  # an acting candidate outranks an advice-only holder
        return LeaseDecision("take", Lease(me, now, now, now + ttl, acts), renew_every)
    if current.acts and not acts:  # advice only: leave an acting holder's lease alone until it is long gone
        gone_at = current.expires_at + TTL_INTERVALS * ttl
        quiet = silent_after(current, ttl) + TTL_INTERVALS * ttl  # the same, on this candidate's own clock
        if now < gone_at and unchanged_for <= quiet:
            return LeaseDecision("follow", None, min(renew_every * TTL_INTERVALS, gone_at - now + _SLACK,
                                                     quiet - unchanged_for + _SLACK))
        return LeaseDecision("take", Lease(me, now, now, now + ttl, acts), renew_every)
    if current.expired(now) or silent(current, unchanged_for, ttl):
        return LeaseDecision("take", Lease(me, now, now, now + ttl, acts), renew_every)
    # Someone else holds it: look again just after it is due to expire (but at least every renewal period).
    return LeaseDecision("follow", None, min(renew_every, max(0.0, current.expires_at - now) + _SLACK,
                                             max(0.0, silent_after(current, ttl) - unchanged_for) + _SLACK))


__all__ = ["AUTOSCALER_LEASE", "CLOCK_SLACK", "TRUST_TTLS", "TTL_INTERVALS", "Action", "Lease", "LeaseDecision",
           "StuckWhy", "lease_decision", "lease_ttl", "silence_window", "silent", "silent_after", "stuck_why",
           "trust_cap"]
