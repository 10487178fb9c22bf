"""A leader lease in a JetStream KV bucket: one process at a time runs the autoscaler.

The lease is one key (``autoscaler``) in bucket ``gamead_leases`` (no bucket TTL: the lease carries its
own expiry). Its value names the holder and when the lease expires::

    {"holder": "api-host-123", "acquiredAt": 1717000000.0, "renewedAt": 1717000010.0,
     "expiresAt": 1717000025.0, "ttl": 15.0, "acts": true, "stack": "/srv/a/.gamead"}

``stack`` (a ``gamead up``'s data dir, left out by any other holder): whose workers the holder moves, as ``gamead
scale status`` and ``gamead up`` say when several stacks share one NATS (:mod:`gamead_core.scaling.stacks`: one
autoscaler per NATS, and why). An older reader ignores it; a lease without it reads as None.

``acts``: the holder changes the worker count (backend ``kubernetes`` or ``local``) rather than only
advising (``none``). An advice-only candidate never takes the lease of an acting holder (a ``gamead serve``
sharing ``gamead up``'s NATS must not silence the local autoscaler), unless that lease has been expired for
``TTL_INTERVALS`` more TTLs (its holder is gone for good); an acting candidate takes the lease of an
advice-only holder at once. A missing ``acts`` reads as true.

Every write is a compare-and-set on the key's revision (``kv.create`` when the key is new,
``kv.update(last=revision)`` otherwise), so two candidates that race for an expired lease cannot both win:
the loser gets ``KeyWrongLastSequenceError`` (10071, lost) and stays a follower. A busy answer (10164: another
write of the key in flight on an R3 bucket, not decided) is sent again (:func:`gamead_core.store.cas.retry_busy`,
:func:`~gamead_core.store.cas.create_key`); one still busy is an unanswered step, as NATS away: the holder keeps its
lease until its own deadline (before fix35d the leader gave its lease up on the first busy renewal).

* :func:`lease_decision` is the pure rule: no lease → acquire; my lease → renew, keeping its ``acquiredAt``,
  while I held it without a break; my lease expired, or not renewed by my own deadline (the process was
  frozen, or cut off from NATS) → acquire it again as a new term (``acquiredAt`` now: the leadership lapsed,
  drill attack25 finding 8, so "leader since" must not claim it never did; the compare-and-set still proves
  nobody took it meanwhile); someone else's expired lease → take over; someone else's live lease → follow until
  it expires. It lives in :mod:`gamead_core.scaling.lease_rule`, pure, with the lease's value (:class:`Lease`).
* :class:`LeaseKeeper` applies it against the bucket. The holder renews every ``ttl / 3``; a follower
  checks again when the lease it sees is due to expire, so it takes over within ``ttl`` of the holder's
  last renewal. The holder counts itself leader only until ``ttl`` after it *sent* its last successful
  renewal (local monotonic clock), so a holder cut off from NATS steps down on its own before anyone can
  take over.

A lease of another expires two ways, whichever comes first:

* ``expiresAt``, written by the holder on nats-server's clock (:mod:`gamead_core.clock`), as every node reads
  it: the hosts' own clocks need not agree (a node whose host was 5 min ahead took a live leader's lease at its
  start, attack33a F5), only each node's sample of nats-server's clock, within its error (milliseconds). A
  keeper with no sample yet, whose write would be stamped on its host clock, first writes the lease free to take
  one (a lease stamped 5 min behind was expired for every sampled reader, which took it at once: suite35);
* on the follower's own monotonic clock: the lease it reads has kept the same KV revision for longer than
  :func:`~gamead_core.scaling.lease_rule.silent_after`: the holder's written ttl, at least the follower's own
  and at most :func:`~gamead_core.scaling.lease_rule.trust_cap` (10 of its own TTLs), so
  its holder missed its renewals (a live holder writes every ``ttl / 3`` of its *own* TTL: a follower with a
  shorter one must not take it, review31 R4). Without it, a holder that died with
  ``expiresAt`` far ahead (its clock ahead, a hand edit, a bug) kept every other node a follower until then:
  nobody reaped, healed the DLQ or scaled, for as long as the skew (attack31b F2: ``expiresAt`` +3600 held
  the reaper and autoscaler leases an hour). The takeover is still a compare-and-set on that revision.
  The holder's own deadline is also ``ttl`` after it sent a renewal, so the two never lead at once.

``gamead doctor`` names a lease whose holder has no live registry entry or whose ``expiresAt`` lies further
ahead than its TTL (``lease_stuck``; ``--repair`` releases it): :mod:`gamead_core.doctor.leases`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import nats.errors
import nats.js.errors

from gamead_core import clock as server_clock
from gamead_core.clock import now as server_now
from gamead_core.errors import GameadError, error_text
from gamead_core.log_throttle import Outage
from gamead_core.queue.connection import nats_boundary
from gamead_core.registry.stamp import sample_stamp
from gamead_core.scaling.lease_rule import (
    AUTOSCALER_LEASE,
    TTL_INTERVALS,
    Lease,
    LeaseDecision,
    lease_decision,
    lease_ttl,
    silent,
    silent_after,
)
from gamead_core.shutdown import last_write
from gamead_core.store.cas import create_key, retry_busy
from gamead_core.times import clock_utc

log = logging.getLogger(__name__)

class LeaseKeeper:
    """Holds (or waits for) one lease in a KV bucket. Call :meth:`step` repeatedly, or :meth:`run`.

    ``kv`` is a nats-py ``KeyValue`` of the leases bucket. ``clock`` is wall time (written into the lease), by
    default nats-server's (:mod:`gamead_core.clock`: a node 5 min ahead took a live leader's lease, attack33a F5);
    ``monotonic`` bounds how long this process trusts a lease it could not renew.
    """

    def __init__(
        self,
        kv: Any,
        me: str,
        ttl: float,
        *,
        key: str = AUTOSCALER_LEASE,
        clock: Callable[[], float] = server_now,
        monotonic: Callable[[], float] = time.monotonic,
        connected: Callable[[], bool] | None = None,
        acts: bool = True,
        stack: str | None = None,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"ttl must be positive, not {ttl!r}")
        self.kv = kv
        self.me = me
        self.ttl = ttl
        self.key = key
        self.acts = acts  #: changes the worker count (False: advice only; see the module docstring)
        self.stack = stack  #: the ``gamead up`` stack written into the lease (None: not a ``gamead up``)
        self._clock = clock
        self._mono = monotonic
        self._connected = connected or (lambda: True)  #: is NATS reachable now? (a release is skipped if not)
        self._held_until = -math.inf  # monotonic deadline of the lease we hold
        self._revision: int | None = None  # revision of our last write
        self.seen: Lease | None = None  #: the lease as last read or written
        #: the KV revision of the lease as last read or written, and since when (monotonic) it has not changed
        self._revision_seen: int | None = None
        self._unchanged_since = self._mono()
        self.changed = asyncio.Event()  #: set whenever leadership is gained or lost
        self._was_leader = False
        self.term = 0  #: grows with each term this process starts (acquire, take over, or again after a lapse)
        self._noted_term = 0
        #: (from, to) epoch seconds of the last lapse of this process's own lease that it re-acquired, or None
        self.lapse: tuple[float, float] | None = None
        self._outage = Outage()  # the bucket unreachable: its first failure, then a line a minute, then "again"
        self._unsampleable = False  # a free lease written to sample the clock gave no sample: stamp the host clock

    @property
    def is_leader(self) -> bool:
        """True while this process holds a lease it renewed less than ``ttl`` ago (monotonic clock)."""
        return self._mono() < self._held_until

    @property
    def leader(self) -> str | None:
        """The holder of the lease as last seen, if it had not expired by then."""
        if self.seen is None or self.seen.expired(self._clock()) or (
                not self.is_leader and silent(self.seen, self._mono() - self._unchanged_since, self.ttl)):
            return None
        return self.seen.holder

    def new_term(self, since: float) -> tuple[int, str]:
        """This process's term (:attr:`term`) for a leader that starts leading at ``since`` (epoch seconds), and
        what to say of a lapse of its own lease that this term ended (``""`` if none): the decision log names it."""
        lapse = self.lapse
        if lapse is None or lapse[1] < since - self.ttl:
            return self.term, ""
        return self.term, (f"leadership lapsed {clock_utc(lapse[0], since)} to {clock_utc(lapse[1], since)} "
                           f"({lapse[1] - lapse[0]:.0f} s without renewing the lease: this process was paused or "
                           "cut off from NATS); leading again")

    def _note_leadership(self, given_up: str = "lost") -> None:
        """Log and signal a change of leadership; ``given_up`` is the word for an end of it: ``lost`` (taken
        over, or not renewed in time) unless this process gave it up on a clean stop (:meth:`release`)."""
        now_leader = self.is_leader
        if now_leader != self._was_leader or self.term != self._noted_term:
            lapsed = now_leader and self._was_leader  # lost and acquired again within one step
            self._was_leader, self._noted_term = now_leader, self.term
            log.info("%s the %s lease (%s)", ("re-acquired (after a lapse)" if lapsed else "acquired")
                     if now_leader else given_up, self.key, self.me)
            self.changed.set()

    async def step(self) -> float:
        """Read the lease, acquire/renew/take it when the rule says so; return seconds until the next step.

        Never raises for NATS trouble or a lost race: it logs and reports a shorter wait instead.
        """
        wait = await self._step()
        self._note_leadership()
        return wait

    async def _step(self) -> float:
        sent = self._mono()
        try:
            with nats_boundary():
                try:
                    entry = await self._get()
                    current = Lease.from_json(entry.value) if entry is not None else None
                    now, held = self._clock(), self.is_leader
                    # a revision first seen counts from when the get returned (it may have been written after
                    # `sent`), so the silence never outlasts the holder's own deadline by the get's latency (R4)
                    quiet = self._unchanged_for(getattr(entry, "revision", None), sent, self._mono())
                    decision = lease_decision(now, current, self.me, self.ttl, self.acts, held, unchanged_for=quiet)
                    if decision.write is not None and self.stack:  # whose workers the holder moves (attack44 F4)
                        decision = replace(decision, write=replace(decision.write, stack=self.stack))
                    unsampled = self._clock is server_now and server_clock.CLOCK.offset is None
                    if unsampled and decision.action == "take" and current is not None and not (
                            silent(current, quiet, self.ttl) or (self.acts and not current.acts)):
                        # expiry judged on the host clock (no sample yet): only a silent holder is taken (R8)
                        decision = LeaseDecision("follow", None, min(self.ttl / TTL_INTERVALS, 1.0))
                    if decision.write is None:
                        self._reached()
                        self.seen = current
                        self._held_until = -math.inf
                        return decision.check_in
                    # before the first sample, a lease stamped on the host clock may be expired for every sampled
                    # reader (a host 5 min behind): the first write frees the lease instead, to sample (R8)
                    free = unsampled and not self._unsampleable and self._sampleable()
                    write = Lease("", now, now, now, self.acts) if free else decision.write
                    put_sent = server_clock.local()
                    value = write.to_json()  # a busy answer sent again; still busy: StillBusy (fix35d)
                    revision = await (create_key(self.kv, self.key, value) if entry is None else
                                      retry_busy(lambda: self.kv.update(self.key, value, last=entry.revision)))
                    put_received = server_clock.local()
                except nats.js.errors.KeyWrongLastSequenceError:
                    # Another candidate wrote first: it holds the lease now. Look again soon.
                    self._reached()
                    self._held_until = -math.inf
                    return min(self.ttl / TTL_INTERVALS, 0.25)
        except GameadError as exc:
            # Keep trusting a lease we hold until its local deadline; is_leader turns False by itself.
            if (still := self._outage.failed(self._mono())) is not None:
                log.warning("%s lease: cannot reach the leases bucket%s: %s", self.key, f", {still}" if still else "",
                            error_text(exc))
            return min(self.ttl / TTL_INTERVALS, 1.0)
        self._reached()
        if free:
            self.seen, self._held_until = write, -math.inf
            self._unchanged_for(revision, sent)
            if await self._sample(revision, put_sent, put_received):
                return await self._step()  # sampled: decide again at once, now on nats-server's clock
            self._unsampleable = True
            return min(self.ttl / TTL_INTERVALS, 0.25)
        if decision.action != "renew":
            self.term += 1
            if current is not None and current.holder == self.me:  # my own lease, after a lapse
                # from when this process stopped counting itself leader (its own deadline), or the lease's end
                since = (now - (sent - self._held_until) if math.isfinite(self._held_until)
                         else current.expires_at)
                self.lapse = (min(since, now), now)  # expired on nats-server's clock while held: never ends first
        self.seen = decision.write
        self._revision = revision
        self._unchanged_for(revision, sent)
        self._held_until = sent + self.ttl
        if await self._sample(revision, put_sent, put_received) and unsampled:
            return 0.0  # written on the host clock before the first sample: write it again on nats-server's now
        return decision.check_in

    def _sampleable(self) -> bool:
        """Can a write to this bucket sample nats-server's clock (a nats-py ``KeyValue``, not a stand-in)?"""
        return getattr(self.kv, "_js", None) is not None and isinstance(getattr(self.kv, "_stream", None), str)

    async def _sample(self, revision: int, sent: float, received: float) -> bool:
        """Sample nats-server's clock from this write (:func:`gamead_core.registry.kv.sample_stamp`): a process
        that keeps no registry entry (``gamead up``'s autoscaler) has no other sample (review33 R8)."""
        js, stream = getattr(self.kv, "_js", None), getattr(self.kv, "_stream", None)
        if js is None or not isinstance(stream, str) or not isinstance(revision, int):
            return False
        return await sample_stamp(js, stream, revision, sent, received, direct=bool(getattr(self.kv, "_direct", False)))

    def _unchanged_for(self, revision: int | None, now: float, seen_at: float | None = None) -> float:
        """Seconds (monotonic, ``now``) the lease has kept KV ``revision`` (None: no key), counted from when this
        process first saw it (``seen_at``, default ``now``): a follower's own measure of a holder that stopped
        renewing."""
        if revision != self._revision_seen:
            self._revision_seen, self._unchanged_since = revision, now if seen_at is None else seen_at
        return max(0.0, now - self._unchanged_since)

    def _reached(self) -> None:
        if (again := self._outage.recovered(self._mono())) is not None:
            log.info("%s lease: the leases bucket %s", self.key, again, extra={"ends_warning": True})

    async def _get(self) -> Any:
        try:
            entry = await self.kv.get(self.key)
        except nats.js.errors.KeyNotFoundError as exc:
            # A deleted/purged key still has a revision to compare against.
            marker = getattr(exc, "entry", None)
            return marker if marker is not None and getattr(marker, "revision", None) else None
        return entry

    async def run(self, stop: asyncio.Event) -> None:
        """Step until ``stop`` is set, then release the lease if held. Never raises."""
        while not stop.is_set():
            try:
                wait = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the keeper must outlive any one bad step
                log.exception("%s lease step failed", self.key)
                wait = 1.0
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(0.01, wait))
            except asyncio.TimeoutError:
                pass
        await self.release()

    async def release(self) -> None:
        """Give the lease up at once (a clean shutdown), so a follower need not wait for it to expire."""
        if not self.is_leader or self._revision is None or self.seen is None:
            return
        now = self._clock()
        released = replace(self.seen, holder="", renewed_at=now, expires_at=now)
        self._held_until = -math.inf
        revision = self._revision
        try:
            await last_write(lambda: retry_busy(lambda: self.kv.update(self.key, released.to_json(), last=revision)),
                             timeout=2.0, connected=self._connected())
            word = "released"  # a clean stop: never "lost", which reads like a fault (ops13 finding 5)
        except Exception as exc:  # noqa: BLE001 - it expires on its own anyway
            log.info("could not release the %s lease (it expires in %.1fs): %s", self.key, self.ttl, error_text(exc))
            word = "stopped holding (on a clean stop)"
        self._note_leadership(given_up=word)


__all__ = [
    "AUTOSCALER_LEASE",
    "Lease",
    "LeaseDecision",
    "LeaseKeeper",
    "TTL_INTERVALS",
    "lease_decision",
    "lease_ttl",
    "silent",
    "silent_after",
]
