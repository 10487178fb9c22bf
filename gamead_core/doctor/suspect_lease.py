"""The suspect lease held by a registered worker that runs no suspect ad with it, for the doctor (lease54).

The lease ``suspect`` of ``gamead_leases`` (:mod:`gamead_core.worker.turn_rule`) lets one suspect ad run alone in
the fleet; while it is held every other worker hands its suspect ads back. A holder with no live registry entry is
:mod:`gamead_core.doctor.leases`' ``lease_stuck`` (the node is gone). A holder that *is* registered was never named,
whatever it did with the lease: a release lost, a hand edit naming a live worker, a bound written wrong kept every
suspect ad of the fleet handed back, each second, for up to 10 of the lease's bound (1,380 s at the defaults), and
``gamead doctor`` said every invariant held. :func:`idle_why` names such a lease (pure), when its holder's entry

* names another process (``pid``): the one that took it is gone (workers take it over too);
* does not hold its ad (``holding``: a worker lists every delivery it holds from its pull until it is settled,
  before the lease is taken and until after it is released), the entry written (``heartbeatAt``, nats-server's
  clock) after the lease was taken (``acquiredAt``) and the lease older than :func:`grace` (``registry.ttl`` and
  :data:`~gamead_core.scaling.lease_rule.CLOCK_SLACK`: an entry listed was written within ``registry.ttl``);
* was taken longer ago than the longest its holder keeps it (:func:`holder_bound`) while its ``expiresAt`` lies
  further ahead: a live holder runs its suspect ad within that bound; past it, no run needs the lease.

Each of these proves no run of that holder needs the lease: releasing it (``holder`` empty: free to every worker,
:func:`gamead_core.worker.turn_rule.verdict`) never lets two suspect ads run alone at once.
"""

from __future__ import annotations

from gamead_core.config import GameadSettings
from gamead_core.registry import NodeInfo
from gamead_core.scaling.lease_rule import CLOCK_SLACK
from gamead_core.times import clock_utc
from gamead_core.worker.alone import queue_bound
from gamead_core.worker.turn_rule import Turn, turn_bound


def grace(settings: GameadSettings) -> float:
    """Seconds (s) a suspect lease may stand while its holder's registry entry does not list its ad yet:
    ``registry.ttl`` (an entry listed now was written within it) plus ``CLOCK_SLACK``. Pure."""
    return settings.registry.ttl + CLOCK_SLACK


def holder_bound(entry: NodeInfo, settings: GameadSettings) -> float:
    """The longest (s) the worker of ``entry`` holds the suspect lease: :func:`~gamead_core.worker.turn_rule.
    turn_bound` with its own ``task_timeout`` (the entry's; ``worker.task_timeout`` of ``settings`` from an older
    node), ``queue.idle_wait`` and ``registry.ttl`` of ``settings`` (not in an entry). Pure."""
    task_timeout = entry.task_timeout or settings.worker.task_timeout
    return turn_bound(task_timeout, queue_bound(settings.queue.idle_wait), settings.registry.ttl)


def idle_why(turn: Turn | None, entry: NodeInfo | None, now: float, settings: GameadSettings) -> str | None:
    """Why the suspect lease ``turn``, whose holder's live registry entry is ``entry``, serves no run of its holder
    at ``now`` (epoch s, nats-server's clock); None when it may (released, expired, no entry: another rule's, or
    its holder holds its ad within its bound). The rules are the module doc's. Pure."""
    if turn is None or not turn.holder or entry is None or entry.id != turn.holder or now >= turn.expires_at:
        return None
    who = f"its holder {turn.holder} (pid {turn.pid})"
    if turn.pid and entry.pid != turn.pid:
        return f"{who} is another process now (pid {entry.pid}): the process that took it is gone"
    age = now - turn.taken_at
    since = entry.heartbeat_at.timestamp() > turn.taken_at + CLOCK_SLACK  # the entry was written after the take
    if age > grace(settings) and since and all(held.ad_id != turn.ad_id for held in entry.holding):
        return (f"{who} does not hold ad {turn.ad_id} it was taken for {age:.0f} s ago (its registry entry, written "
                f"since, lists {len(entry.holding)} held ad(s) without it): no run of it needs the lease")
    if age > (bound := holder_bound(entry, settings)) + CLOCK_SLACK:
        return (f"taken {age:.0f} s ago for ad {turn.ad_id}, longer than {who} keeps it ({bound:.0f} s: 2 × its "
                "task_timeout + its queue wait + registry.ttl), its expiresAt further ahead: written by hand or a bug")
    return None


def idle_text(turn: Turn | None, entry: NodeInfo | None, now: float, settings: GameadSettings) -> str | None:
    """The ``lease_stuck`` detail of :func:`idle_why` (None when it gives none). Pure."""
    if (why := idle_why(turn, entry, now, settings)) is None or turn is None:
        return None
    return (f"held by {turn.holder} until {clock_utc(turn.expires_at, now)}: {why}; meanwhile every suspect ad is "
            "handed back and none runs alone. Fix: gamead doctor --repair (releases it)")


__all__ = ["grace", "holder_bound", "idle_text", "idle_why"]
