"""When a worker dies, its held ads go to other workers within seconds, and innocent ones are not charged.

A worker writes the ads it holds into its heartbeat (``holding``: ad id, delivery, ack subject) *before*
their analyses start (an unconfirmed publish on the connection that then writes the records, so the server
has it first). Whoever notices the death recovers them with :func:`recover`:

* **the worker's next incarnation** (same id, e.g. restarted by ``gamead up``'s supervisor) finds its
  predecessor's entry under its own key at start-up (:func:`adopt_predecessor`);
* **the reaper**, one worker at a time (a lease in ``gamead_leases``, key ``reaper``), watches the registry
  (:func:`gamead_core.worker.reaper_loop.run_reaper`): an entry that expired (its node went silent without
  deleting it) or was replaced by another incarnation of the same id is a death. A clean shutdown deletes its entry (and hands back its
  ads itself), which the reaper tells apart from an expiry.

For each held ad, :func:`gamead_core.worker.budget.held_state` says what it was doing. Every change is a
compare-and-set on the record, and only the writer that wins it sends the ``nak`` (so two recoveries of one
death, or a recovery racing a redelivery that has started, never hand an ad out twice):

* ``running`` ads (record ``processing`` under the held delivery) and ``started`` ones (flagged in the
  heartbeat as analysed without that mark, the fast path; their record says nothing yet) count alike:
  with exactly one, it is charged (a ``running`` attempt stays counted, a ``started`` one is counted now;
  the error is ``WorkerLost``, and it returns after its backoff); with several, none is charged (a
  ``running`` attempt is refunded) and each is marked ``suspect`` so it runs alone next time
  (:mod:`gamead_core.worker.solo`);
* ``waiting`` ads (pulled, not started) are handed back as they are;
* one death is often recovered several times (``gamead up``'s supervisor at once, the restarted worker
  adopting its predecessor, the reaper), each reading the records while another may be half-way: the
  verdict must not depend on which ads the others reached first. So each ad settled as running is marked
  with the death (``lostIn``, :func:`death_id`) and every recovery counts those as running too; without it,
  a recovery that found one ad not reached yet charged that innocent ad (issue I5);
* the ``nak`` (redelivery now, or after the backoff) is sent only while no redelivery can have happened
  yet (:func:`~gamead_core.worker.budget.nak_window_open`, judged with the ``ack_wait`` of the consumer that
  holds the delivery, read from the server: :mod:`gamead_core.worker.consumer_ack_wait`); later, JetStream's
  ``ack_wait`` has handed the ad back already and only the record changes.

Recovered ads get ``retryAt`` = the moment they became due, so they keep their place in the aging order.

The reaper also watches API nodes: one whose entry expires (or comes back as another process) died, perhaps
between an ad's record and its work message; :mod:`gamead_core.worker.orphans` queues those records again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone

import nats.errors
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from gamead_core import clock, names
from gamead_core.store.unreadable import UnreadableRecord
from gamead_core.config import GameadSettings
from gamead_core.errors import ConfigError, Conflict, GameadError, NotFound, error_text
from gamead_core.models import AdError, AdRecord, AdStatus
from gamead_core.registry import HeldAd, NodeInfo, Registry, incarnation, same_incarnation
from gamead_core.registry import deaths as node_deaths
from gamead_core.registry.claim import Claimed
from gamead_core.store.ads import AdStore
from gamead_core.worker.backoff import backoff
from gamead_core.worker.budget import death_verdict, held_state, nak_window_open
from gamead_core.worker.consumer_ack_wait import AckWaits
from gamead_core.worker.keepalive import keepalive_period
from gamead_core.worker.lost_count import count_lost
from gamead_core.worker.recovery_text import expired_line, level_ack_waits, recovery_line, unregistered_line
from gamead_core.worker.suspect_turn import release_dead

log = logging.getLogger(__name__)
#: How the lines name a worker whose registry entry expired: dead, or only silent (SIGSTOP, a hang), it cannot tell
SILENT = "stopped answering (its registry entry expired: dead, frozen or hung)"

#: The reaper lease lasts this many heartbeat intervals (a dead reaper is replaced within it), and at most
#: half the registry TTL, so a new reaper still sees the entry of a reaper that died holding ads.
LEASE_INTERVALS = 3.0


def reaper_lease_ttl(heartbeat_interval: float, registry_ttl: float) -> float:
    """The reaper lease TTL: ``min(3 × heartbeat interval, registry TTL / 2)`` (pure)."""
    return min(LEASE_INTERVALS * heartbeat_interval, registry_ttl / 2)


@dataclass
class Recovery:
    """What one recovery did (for the log line and the tests)."""

    worker_id: str
    running: int = 0
    charged: int = 0
    refunded: int = 0
    handed_back: int = 0  #: ``nak`` sent
    untouched: int = 0  #: already settled, or changed meanwhile
    #: final under the held delivery itself (its outcome written, its ack lost with the worker): acknowledged now
    acked: int = 0
    completed: int = 0  #: ads the worker had completed since its start (its last heartbeat's ``processed``)
    #: it was running one analysis, charged for its death (the lone-run rule): the crash is that ad's
    lone_charged: bool = False


def _nak_payload(delay: float) -> bytes:
    """The reply that hands a delivery back (``-NAK``), redelivered after ``delay`` s when > 0."""
    if delay <= 0:
        return Msg.Ack.Nak
    return Msg.Ack.Nak + b" " + orjson.dumps({"delay": int(delay * 1e9)})


async def _settle_delivery(nc: NATS, held: HeldAd, reply: bytes) -> bool:
    """Send ``reply`` on the ack subject of the delivery ``held``: ``+ACK`` (``Msg.Ack.Ack``) acknowledges it, a
    ``-NAK`` (:func:`_nak_payload`) hands it back. False, logged, if that is no ack subject of the work stream or
    NATS did not take it."""
    what, doing = ("acknowledge", "acknowledging") if reply == Msg.Ack.Ack else ("hand back", "handing back")
    if not names.is_work_ack_subject(held.ack_subject):
        log.warning("not %s ad %s: %r is not an ack subject of the work stream", doing, held.ad_id,
                    held.ack_subject[:200], extra={"ad_id": held.ad_id})
        return False
    try:
        await nc.publish(held.ack_subject, reply)
    except (nats.errors.Error, asyncio.TimeoutError) as exc:
        log.warning("could not %s ad %s: %r", what, held.ad_id, exc, extra={"ad_id": held.ad_id})
        return False
    return True


def death_id(node: NodeInfo) -> str:
    """The identity of one worker death, ``"<worker id>:<pid>@<started at, ISO 8601>"`` (pure): the incarnation
    that died (``gamead up`` restarts a worker under the same id). Written as the record's ``lostIn`` by the
    recovery that settles an ad that was running then."""
    return incarnation(node.id, node.pid, node.started_at)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


async def recover(
    nc: NATS, store: AdStore, node: NodeInfo, settings: GameadSettings, *, now: float | None = None,
    silent: bool = False,
) -> Recovery:
    """Hand back (and settle the budget of) the ads ``node`` held when it died, or (``silent``: its registry entry
    expired, which a frozen or hung process's does too) stopped answering; the lines say which. Safe to repeat.

    Raises :class:`~gamead_core.errors.GameadError` only for NATS failures reading or writing records;
    what was done before stays done, and a repeat finishes the rest.
    """
    now = clock.now() if now is None else now
    report = Recovery(node.id, completed=node.processed)
    ack_waits = AckWaits(nc, timeout=settings.nats.request_timeout)
    judged: dict[float, str] = {}  # the ack_waits the held ads were judged with, and where each came from
    renew_every = keepalive_period(node.ack_wait) if node.ack_wait else None
    found: list[tuple[HeldAd, AdRecord, int]] = []
    for held in node.holding:
        try:
            current = await store.get(held.ad_id)
        except (NotFound, UnreadableRecord):  # (unreadable: the worker delivering it next rebuilds it)
            report.untouched += 1
            continue
        found.append((held, current.record, current.revision))
    death = death_id(node)
    gone = SILENT if silent else "died"  # an expired entry may be a frozen process (attack31c F4): not "died"
    # An ad an earlier recovery of this death already settled (lost_in) counts as it counted then: each
    # recovery must reach the verdict of the first, whatever it finds half-done (issue I5).
    running = [f for f in found if f[1].lost_in == death
               or held_state(f[1], f[0].delivery, f[0].started) in ("running", "started")]
    report.running = len(running)
    charge = report.lone_charged = death_verdict(len(running))
    wcfg = settings.worker
    naks: list[tuple[HeldAd, bytes]] = []  #: sent together once every record is written (below)
    for held, record, revision in found:
        state = held_state(record, held.delivery, held.started)
        if state == "settled":
            # its outcome was written under this very delivery, its ack not sent (chaos47 F6): acknowledged now,
            # not left to ack_wait (a final ad's message in the work stream meanwhile: doctor completed_with_message)
            final_here = record.status.terminal and record.delivery == held.delivery
            if final_here and await _settle_delivery(nc, held, Msg.Ack.Ack):
                report.acked += 1
            else:
                report.untouched += 1
            continue
        delay = 0.0
        ack_wait, source = await ack_waits.of(held.ack_subject, node.ack_wait, settings.queue.ack_wait)
        judged[ack_wait] = source
        window = nak_window_open(now, node.heartbeat_at.timestamp(), ack_wait, renew_every)
        if state == "started":  # analysed unmarked: its record neither charged nor named this delivery
            record = record.model_copy(update={"attempts": record.attempts + (1 if charge else 0),
                                               "delivery": held.delivery, "worker_id": node.id})
            state = "running" if charge else "started"
        if state == "started":
            update = {"status": AdStatus.QUEUED, "suspect": True, "retry_at": _utc(now), "lost_in": death}
        elif state == "running":
            if charge:
                delay = backoff(record.attempts, base=wcfg.backoff_base, cap=wcfg.backoff_cap)
                error = AdError(
                    error_class="WorkerLost",
                    message=f"worker {node.id} {gone} during this ad's analysis (the only one it was running)",
                    retryable=True, at=_utc(now),
                )
                update = {"status": AdStatus.QUEUED, "suspect": True, "error": error,
                          "first_failure_at": record.first_failure_at or error.at,
                          "retry_at": _utc(now + delay), "lost_in": death}
            else:
                update = {"status": AdStatus.QUEUED, "suspect": True, "attempts": max(0, record.attempts - 1),
                          "retry_at": _utc(now), "lost_in": death}
        else:  # waiting: pulled but not started; claim this delivery so a second recovery leaves it alone
            if not window:
                report.untouched += 1
                continue
            due = min(record.retry_at or _utc(now), _utc(now))
            update = {"delivery": held.delivery, "retry_at": due}
        try:
            await store.update(record.model_copy(update=update), revision)
        except Conflict:  # a redelivery started it, or another recovery got there first
            report.untouched += 1
            continue
        if state in ("running", "started"):
            if charge:
                report.charged += 1
                if record.attempts < wcfg.max_attempts:  # retried: counted (the last one is, dead-lettered, dead)
                    await count_lost(nc.jetstream())  # where every API reads it (attack29a F11)
                log.warning("ad %s charged an attempt (now %d): the only analysis worker %s was running when "
                            "it %s", held.ad_id, record.attempts, node.id, gone,
                            extra={"ad_id": held.ad_id, "worker_id": node.id, "lost_in": death})
            else:
                report.refunded += 1
        if window:
            naks.append((held, _nak_payload(delay)))
    # Together, after every record write. Sent between the writes (tens of ms each on a loaded machine), the first ad
    # handed back (maybe the one that crashed its worker) reached an idle worker, which put its long poll back and
    # crashed again while the next write ran: the next ad's nak went to the long poll of a dying worker, unread, and
    # waited ack_wait (300 s in the crash-loop test, crashflake50). Together, the ads behind the first reach that
    # worker, if at all, as it starts the first, alive: it holds them or hands them back (gamead_core.queue.inbox).
    for held, payload in naks:
        if await _settle_delivery(nc, held, payload):
            report.handed_back += 1
    # its suspect lease, if it held it (.suspect_turn): after the hand-backs, which a slow NATS must not delay
    await release_dead(nc, node, settings.nats.request_timeout)
    # one line per recovery, even when it found nothing announced: the dead worker may have held deliveries it
    # had not announced yet, which only JetStream's ack_wait brings back (gamead_core.worker.recovery_text)
    waits = await level_ack_waits(ack_waits, settings.queue.partitions, node.ack_wait, settings.queue.ack_wait)
    for wait, source in judged.items():
        waits.setdefault(wait, source)
    log.warning(
        "%s", recovery_line(node.id, len(node.holding), report.running, charge, report.handed_back,
                            report.untouched, waits, gone=gone, acked=report.acked),
        extra={"worker_id": node.id, "charged": report.charged, "refunded": report.refunded},
    )
    return report


async def adopt_predecessor(
    nc: NATS, store: AdStore, registry: Registry, settings: GameadSettings, me: NodeInfo,
    claimed: Claimed | None = None,
) -> Recovery | None:
    """At start-up: if our key held the entry of an earlier process with our id (it died without deleting it),
    recover what it held: ``claimed.previous``, the entry the start's claim wrote over
    (:mod:`gamead_core.registry.claim`; its key free, the entry an older gamead left under the id's earlier key, if
    any); without ``claimed``
    (the registry did not answer the claim), what the key holds. Then put ``me``, our first heartbeat, before any
    ad is pulled: the put samples nats-server's clock (:meth:`Registry.put`, :mod:`gamead_core.clock`), so the
    first ads' ``startedAt`` and aging keys are on it, not on this host's clock (attack33a F2, F7: before, the
    heartbeats' first sample raced the first pull); a failed put is logged, the heartbeats try again, but the key
    found another process's raises :func:`~gamead_core.registry.owner.id_lost` (exit 5) before any pull (review46
    F3: a claim whose write went unanswered, a rival's landed). Returns None when there was nothing to adopt.
    Never the entry of a rival start written after the claim's read (claim45)."""
    try:
        if claimed is None:
            previous, _ = await registry.lookup(me.id)
        else:
            previous = claimed.previous or (await registry.lookup_earlier(me.id))[0]
    except GameadError as exc:
        log.warning("could not read the registry entry of a predecessor: %s", exc.message)
        previous = None
    adopted = None
    if previous is not None and previous.role == "worker" and not same_incarnation(previous, me):
        log.info("adopting what the previous worker %s (pid %d) held", me.id, previous.pid)
        adopted = await recover(nc, store, previous, settings)
    try:
        await registry.put(me)
    except ConfigError:  # id_lost: a rival start's claim landed where this one's went unanswered (review46 F3)
        raise
    except GameadError as exc:
        log.warning("first heartbeat not written (the heartbeats try again): %s", exc.message)
    return adopted


async def recover_exited(
    nc: NATS, js: JetStreamContext, settings: GameadSettings, worker_id: str, pid: int, registered: bool = True
) -> Recovery | None:
    """A supervisor saw worker ``worker_id`` (process ``pid``) die: recover what its registry entry says it
    held, if the entry is still that process's. For :meth:`gamead_core.scaling.local.LocalScaler.attach_recovery`.
    No entry (and no delete marker): a warning that its entry expired and its deliveries come back after
    ``ack_wait`` if the supervisor saw the process beat (``registered``), else only an INFO record that it ended
    before it registered, holding nothing (attack28c F3: a worker refused at every start was said to have died
    holding deliveries, at every retry). Never raises (logs instead)."""
    try:
        registry = Registry(nc, js, settings.registry, replicas=settings.queue.replicas,
                            timeout=settings.nats.request_timeout)
        entry, deleted = await registry.lookup(worker_id)
        if entry is None and not deleted and not registered:  # refused or dead at its start: it pulled nothing
            log.info("%s", unregistered_line(worker_id, pid), extra={"worker_id": worker_id})
            return None
        if entry is None and not deleted:  # expired first (killed after registry.ttl of silence): say what it can
            waits = await level_ack_waits(AckWaits(nc, timeout=settings.nats.request_timeout),
                                          settings.queue.partitions, None, settings.queue.ack_wait)
            log.warning("%s", expired_line(worker_id, pid, waits), extra={"worker_id": worker_id})
            return None
        if entry is None or entry.pid != pid or entry.role != "worker":
            return None
        return await recover(nc, await AdStore.open(nc, js), entry, settings)
    except Exception as exc:  # noqa: BLE001 - the worker's next incarnation or the reaper will try again
        log.warning("could not recover what worker %s held: %s", worker_id, error_text(exc))
        return None


def deaths(before: dict[str, NodeInfo], after: dict[str, NodeInfo]) -> list[NodeInfo]:
    """Workers seen in ``before`` that are gone from ``after`` or came back as another incarnation
    (:func:`gamead_core.registry.deaths`; pure), holding announced ads or not: one that announced none may still
    have held deliveries in its last moments, and its recovery line says when they come back
    (:mod:`gamead_core.worker.recovery_text`). A vanished entry may also be a clean shutdown: the caller checks."""
    return node_deaths(before, after, lambda node: True)


__all__ = ["Recovery", "adopt_predecessor", "death_id", "deaths", "reaper_lease_ttl", "recover", "recover_exited"]
