"""The suspect lease's rules (poison53), pure: at most one suspect ad runs alone in the whole fleet.

A suspect ad (:mod:`gamead_core.worker.budget`) runs alone on its worker, whose gate then blocks every other analysis
and pull (:mod:`gamead_core.worker.solo`). A poison ad among the suspects crashes that worker again, and before, every
worker given a suspect ad ran it alone: 4 poison ads among 400 at 25 ads/s (3 workers, 2 busy loops beside them, load
12-20) left the fleet completing nothing for 19-28 s (8-10 s now). Now a worker runs a suspect ad alone only while it
holds the lease ``suspect`` of bucket ``gamead_leases`` (:mod:`gamead_core.worker.suspect_turn`); one given a suspect ad
while another holds it hands the ad back and goes on with ordinary ads.

The lease's value (:class:`Turn`) is written in the leader leases' shape (``holder``, ``acquiredAt``,
``renewedAt``, ``expiresAt``, ``ttl``: :class:`gamead_core.scaling.lease_rule.Lease` reads it, so ``gamead doctor``
judges it with the others) plus ``pid`` and ``adId``. It is deleted once the ad's attempt is settled, and never
renewed: ``expiresAt`` is its taking plus :func:`turn_bound`, the longest a live holder keeps it. It is *free*
(:func:`verdict`) when

* the key is missing, deleted, unreadable or released (``holder`` empty: ``gamead doctor --repair``);
* ``expiresAt`` passed (nats-server's clock);
* its holder's registry entry is gone or names another process (the judgement the reaper and a worker's next
  incarnation make of a death). A dead holder's recovery (``gamead up``'s supervisor, its next incarnation, the
  reaper: :func:`gamead_core.worker.reaper.recover`) releases it at once
  (:func:`gamead_core.worker.suspect_turn.release_dead`); this covers a recovery that did not run or failed.

Kept for the dead holder's next process instead (tried in drill poison53), one worker crash-looped on the poison
ads while the others served, but the poison ads' attempts ran one after another, each a worker's restart (7-12 s at
load 7-21), and the innocent suspect ads waited behind them: the last completed 139 s after the first submit
(released: 64-76 s), with 64 s of no completion at the tail (released: 10-14 s at most).

A lease held by this very process (another of its suspect ads) is not taken again: that ad is handed back too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from gamead_core.scaling.lease_rule import CLOCK_SLACK, trust_cap

#: Seconds a suspect ad handed back waits before it is delivered again (the lease holder's run: ~0.1-5 s)
HAND_ON_DELAY = 1.0

Verdict = Literal["take", "hand_back", "look_up"]


@dataclass(frozen=True, slots=True)
class Turn:
    """The suspect lease's value: ``holder`` (worker id; empty: released), its ``pid``, the ad it runs alone
    (``ad_id``), ``taken_at`` (epoch s, nats-server's clock) and ``bound`` (s: :func:`turn_bound`)."""

    holder: str
    pid: int
    ad_id: str
    taken_at: float
    bound: float

    @property
    def expires_at(self) -> float:
        return self.taken_at + self.bound

    def to_json(self) -> bytes:
        return orjson.dumps({"holder": self.holder, "acquiredAt": self.taken_at, "renewedAt": self.taken_at,
                             "expiresAt": self.expires_at, "ttl": round(self.bound, 3), "pid": self.pid,
                             "adId": self.ad_id})

    @classmethod
    def from_json(cls, data: bytes | None) -> Turn | None:
        """The lease in ``data``; None for a missing or unreadable value (free: taken over by compare-and-set)."""
        if not data:
            return None
        try:
            raw: Any = orjson.loads(data)
            taken = float(raw["acquiredAt"])
            return cls(holder=str(raw.get("holder") or ""), pid=int(raw.get("pid") or 0),
                       ad_id=str(raw.get("adId") or ""), taken_at=taken, bound=float(raw["expiresAt"]) - taken)
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError, OverflowError):
            return None


def turn_bound(task_timeout: float, alone_wait: float, registry_ttl: float) -> float:
    """The longest (s) a live worker holds the suspect lease: it is alone at the queue (``alone_wait``:
    :attr:`gamead_core.worker.alone.QueueSide.bound`), the suspect ad's own analysis (``task_timeout``), and
    ``registry_ttl`` for its writes (a holder silent that long is judged dead by its registry entry anyway); and one
    ``task_timeout`` more, for its other analyses to end: workers before lease54 took the lease before that wait
    (now it is taken after it), and a fleet of both versions must agree on the bound (a newer worker or doctor
    judging an older one's lease). Past it the lease is free, whoever holds it. Pure."""
    return 2 * task_timeout + alone_wait + registry_ttl


def verdict(turn: Turn | None, me: str, pid: int, now: float, holder_pid: int | None = -1,
            own_bound: float | None = None, *, running_here: bool = True) -> tuple[Verdict, str]:
    """What worker ``me`` (process ``pid``) does with a suspect ad, the lease read as ``turn`` at ``now`` (epoch s),
    and why (for the log line): ``take`` it (free), ``hand_back`` the ad (held), or ``look_up`` the holder's
    registry entry first and ask again with ``holder_pid``: the pid of that entry, None when it is gone (-1: not
    read). ``own_bound``: this worker's :func:`turn_bound`; a written bound is trusted up to
    :func:`~gamead_core.scaling.lease_rule.trust_cap` of it, and a lease taken ahead of now (past
    :data:`~gamead_core.scaling.lease_rule.CLOCK_SLACK`; the time is nats-server's for every worker) is free: a
    hand edit or a bug never holds every suspect ad back for ever (attack53: ``expiresAt`` 9999999999 naming a live
    worker kept 4 suspect ads handed back every second; None: no cap). ``running_here``: a turn of this process
    holds the lease now; when none does, this process's own lease is a leftover (a release that failed, a write
    whose answer was lost) and is taken, not waited out. Pure."""
    if turn is None:
        return "take", ""
    if not turn.holder:
        return "take", "released"
    if turn.taken_at > now + CLOCK_SLACK:
        return "take", f"taken {turn.taken_at - now:.0f} s ahead of now: written by hand or by a bug"
    bound = turn.bound if own_bound is None else min(turn.bound, trust_cap(own_bound))
    if now >= turn.taken_at + bound:
        return "take", f"taken {now - turn.taken_at:.0f} s ago, past its bound of {bound:.0f} s"
    if turn.holder == me:
        if turn.pid == pid and running_here:
            return "hand_back", f"this worker runs ad {turn.ad_id} alone"
        if turn.pid == pid:
            return "take", f"this process's own, for ad {turn.ad_id}, left by a turn that ended (not released)"
        return "take", f"this worker's previous process (pid {turn.pid}) died running ad {turn.ad_id} alone"
    if holder_pid == -1:
        return "look_up", ""
    if holder_pid is None:
        return "take", f"its holder {turn.holder} (pid {turn.pid}) has no registry entry any more"
    if holder_pid != turn.pid:
        return "take", f"its holder {turn.holder} is another process now (pid {holder_pid}, not {turn.pid})"
    # taken, not necessarily running yet: its claim and its queue wait come first (attack53: "runs alone since 20 s"
    # was said of an ad whose worker still waited for a hanging one; lease54: the lease is taken after that wait now)
    return "hand_back", (f"ad {turn.ad_id} has the turn on worker {turn.holder} (pid {turn.pid}), taken "
                         f"{max(0.0, now - turn.taken_at):.1f} s ago")


def held_by(turn: Turn | None, worker_id: str, pid: int) -> bool:
    """Whether ``turn`` is held by process ``pid`` of worker ``worker_id`` (a dead one's recovery releases it).
    Pure."""
    return turn is not None and turn.holder == worker_id and turn.pid == pid


__all__ = ["HAND_ON_DELAY", "Turn", "Verdict", "held_by", "turn_bound", "verdict"]
