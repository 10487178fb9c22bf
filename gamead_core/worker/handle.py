"""One ad through the worker (:class:`AdHandler`): read the record (on a first delivery that carries
``Gamead-Record-Revision`` the message is the record at that revision, nothing is read; otherwise read, and
created from the message if the API never wrote it) → final? acknowledge · budget spent? dead-letter · else pass the
:class:`~gamead_core.worker.solo.SoloGate` (alone if suspect) → analyse → write the outcome (only while the
record is still this attempt's) → ``ack`` / ``nak(backoff)``, through the hooks
(:mod:`gamead_core.worker.hooks`). Outcomes are written by :mod:`gamead_core.worker.settle`.

Two paths (issue 14.2: one awaited KV write per completed ad in the common case; the rules of the budget:
:mod:`gamead_core.worker.budget`):

* **fast** – a first delivery (``num_delivered == 1``) of an ad that is not suspect: the attempt's
  ``processing`` record is kept in memory and written only with the outcome (one compare-and-set over the
  revision read, or named by the message: then the outcome is the only KV round trip of the ad), or by a timer once the analysis has run ``worker.processing_mark_after`` seconds
  (:mod:`gamead_core.worker.mark`). The worker's heartbeat flags the delivery ``started`` before the record is
  read, so a crash is charged by whoever recovers the worker (:mod:`gamead_core.worker.reaper`).
* **slow** – a redelivery, a suspect ad (it runs alone), ``processing_mark_after: 0``, or a first delivery
  whose ``started`` flag a suspect ad cleared while it waited to run: the ``processing`` write charges the
  attempt before the analysis, as the record itself then tells a crash.

Our own storage failing is never the ad's fault: a delivery whose record cannot be read or written before the
analysis is handed back uncharged after a back-off (:mod:`gamead_core.worker.storage_pause`); a slow path's claim
that may still land (its answer lost in a stall) is refunded or fenced off first (:func:`.give_back.unclaim`).

A record that cannot be read is rebuilt from the message (:func:`gamead_core.worker.records.rebuild`, attack31a
F8), unless a newer gamead wrote it: then the delivery is put back for a newer worker (review31 R10); a delivery
the record names as running on a live worker is put back, not called lost (:mod:`gamead_core.worker.holder`,
attack31a F10). Why a redelivery came is judged and said by
:mod:`gamead_core.worker.redelivery` (attack40b F4: a delivery lost in flight came back after ack_wait unsaid).

A message the API did not publish (no ad id it issues, a body that is not that ad's record where the body is used)
is never analysed and creates nothing: it is terminated once, logged, counted and traced
(:mod:`gamead_core.worker.poison`, attack31a F3).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from nats.aio.msg import Msg
from collections.abc import Awaitable, Callable

from gamead_core import clock, names
from gamead_core.config import GameadSettings
from gamead_core.errors import GameadError, QueueUnavailable
from gamead_core.ids import ID_LENGTH
from gamead_core.logs import pop_ad_fields, push_ad_fields
from gamead_core.models import AdRecord, AdStatus, Analysis
from gamead_core.queue.connection import NOT_SENDING
from gamead_core.registry import Registry
from gamead_core.store.ads import Versioned
from gamead_core.telemetry.metrics import left_for_newer
from gamead_core.telemetry.tracing import consumer_span, enabled as tracing_enabled
from gamead_core.worker.analyzer import analyze, check_analysable
from gamead_core.worker.backoff import backoff
from gamead_core.worker.budget import NAK_WINDOW, budget_spent, delivery_id, ends_unrun, lost_attempt, superseded
from gamead_core.worker.alone import QueueSide, alone_at_queue
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.foreign import DONE, settle_unexpected
from gamead_core.worker.give_back import may_have_landed, unclaim
from gamead_core.worker.held import HeldAds, HeldKey
from gamead_core.worker.hooks import Delivery, Hooks
from gamead_core.worker.lease import Lease, recovered
from gamead_core.worker.mark import ProcessingMark
from gamead_core.worker.poison import NotAnAd, check_ad_id
from gamead_core.worker.records import NEWER_WAIT, LeftForNewer, Withdrawn
from gamead_core.worker.redelivery import Handed, Redeliveries
from gamead_core.worker.settle import Settler
from gamead_core.worker.shield import Shield
from gamead_core.worker.solo import SoloGate
from gamead_core.worker.storage_pause import STORAGE_ERRORS, StoragePause
from gamead_core.worker.suspect_turn import SuspectTurns
from gamead_core.worker.timers import Deadlines

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger, as before the split

class _StorageDown(Exception):
    """Internal: the delivery could not start because our storage failed (nothing was charged)."""


class AdHandler:
    """Handles one delivery at a time per call, for the worker ``worker_id``; shares the worker's counters,
    solo gate, storage pause, hooks and shield (:class:`~gamead_core.worker.runtime.Worker` builds it).
    ``held``: the worker's held deliveries (their ``started`` flags); ``announce``: put them into the registry
    now (an unconfirmed publish); ``analysed``: called in the ad's task with its held key when its analysis
    succeeded, before its outcome is written (the worker may then start another analysis in its slot, and no
    longer counts this one as running); ``registry``: where a delivery the record names as running is looked up
    before it is called lost (:func:`~gamead_core.worker.holder.holder_of`); ``handed``: the worker's hand-backs
    (:meth:`~.handback.HandBacks.handed`), which tell a redelivery it caused (:mod:`.redelivery`); ``queue``: the
    worker's pulls, ended before a suspect ad's attempt (:mod:`.alone`; None: only what it holds is confirmed)."""

    def __init__(self, settings: GameadSettings, worker_id: str, *, stats: WorkerStats, settle: Settler,
                 gate: SoloGate, pause: StoragePause, hooks: Hooks, shielded: Shield,
                 held: HeldAds | None = None, announce: Callable[[], Awaitable[None]] | None = None,
                 analysed: Callable[[HeldKey], None] | None = None, registry: Registry | None = None,
                 lease: Lease | None = None, handed: Handed | None = None, queue: QueueSide | None = None) -> None:
        self.settings, self.worker_id, self.stats = settings, worker_id, stats
        self._settle, self._gate, self._pause, self._hooks, self._shielded = settle, gate, pause, hooks, shielded
        self._turns = SuspectTurns(settings, worker_id, gate, shielded, registry)  #: one suspect alone in the fleet
        self._held = held if held is not None else HeldAds()
        self._announce, self._registry, self._queue, self._analysed = announce, registry, queue, analysed
        self.redeliveries = Redeliveries(settle.ack_wait, handed, registry=registry,  #: why one came (.redelivery)
                                          holder_wait=settings.registry.heartbeat_interval)
        self.lease = lease  #: the worker's lease: an ad taken in hand before it lapsed may be recovered (.lease)
        self.running: dict[tuple[str, str], tuple[str, str, asyncio.Task[Any]]] = {}  #: (stream, delivery) → (ad
        self.taken: set[tuple[str, str]] = set()  #: id, delivery, task); those a recovery took (.lease.InDoubt)
        self._mark_after = settings.worker.processing_mark_after
        self._marks = Deadlines(self._mark_after)  #: every attempt's delayed mark, on one timer

    async def __call__(self, msg: Msg) -> None:
        """Handle one delivery (the module doc) with the ad's ids on every log line and in a ``process`` span
        (gamead_core.telemetry). Never raises but :class:`asyncio.CancelledError` (the ad is handed back first);
        every other error of one ad is logged and counted in ``stats.last_error``."""
        headers, meta = msg.headers or {}, msg.metadata
        ad_id = headers.get(names.HDR_AD_ID, "?")
        if len(ad_id) > ID_LENGTH:  # poison (refused below): a client's long string is not copied into every field
            ad_id = ad_id[:ID_LENGTH] + "…"
        attempt = meta.num_delivered or 1
        # the fields and the span without context-manager objects when tracing is off (the hot path: issue 14)
        level = _level(msg.subject)
        token = push_ad_fields({"ad_id": ad_id, "worker_id": self.worker_id, "priority": level,
                                "delivery": attempt})  # not "attempt": the record's charged attempts differ
        if attempt > 1:  # gamead_redeliveries_total (attack29a F12: redeliveries had no series)
            self._settle.metrics.redelivered(level)
        try:
            if tracing_enabled():
                with consumer_span(msg.subject, ad_id, headers, delivery_count=attempt,
                                   stream_seq=meta.sequence.stream):
                    await self._handle(msg, meta, ad_id, attempt)
            else:
                await self._handle(msg, meta, ad_id, attempt)
        finally:
            pop_ad_fields(token)

    async def _handle(self, msg: Msg, meta: Msg.Metadata, ad_id: str, attempt: int) -> None:
        if self._gate.running == 0:  # idle time is not "no progress": a stuck check starts from here
            self.stats.last_progress = clock.now()
        seq = meta.sequence.stream
        key = (meta.stream, seq)  #: the held-ads key (gamead_core.worker.held)
        delivery = delivery_id(seq, attempt)
        held = Delivery(msg, seq, delivery, ad_id)
        settle = self._settle
        await self._hooks.before_delivery(held)
        settled = claimed = False
        epoch = self.lease.epoch() if self.lease is not None else 0
        mine = (meta.stream, delivery)  # one message may run twice here (a copy before the first's claim landed)
        self.running[mine] = (ad_id, delivery, asyncio.current_task())  # type: ignore[assignment]  # (.lease)
        try:
            check_ad_id(msg.headers.get(names.HDR_AD_ID) if msg.headers else None)  # NotAnAd: below
            try:
                current = await settle.read(msg, ad_id, first=attempt == 1)
                if ends_unrun(current.record, delivery, self.settings.worker.max_attempts):  # a replica's copy?
                    current = await settle.read(msg, ad_id, leader=True)  # the leader's decides (attack40b F1)
            except STORAGE_ERRORS as exc:
                raise _StorageDown(exc.message) from exc
            record = current.record
            if attempt > 1:  # why it came again: said (attack40b F4)
                self.redeliveries.seen(msg, record, ad_id)
            if record.status.terminal:
                self.stats.skipped += 1
                settled = True
                await self._shielded(msg.ack())
                return
            if superseded(record, delivery):
                settled = True
                await settle.stale(msg, record, delivery)
                return
            if record.dead_letter_error is not None or budget_spent(record, self.settings.worker.max_attempts):
                settled = True  # dead-lettered without an analysis (a full DLQ refused it before: dlq_wait)
                await settle.give_up(msg, record, delivery)
                return
            lost = lost_attempt(record, delivery)  # a live holder's: looked at again later (attack31a F10)
            if lost and (wait := await self.redeliveries.holder_wait(record, delivery)) is not None:
                settled = True
                await self._shielded(msg.nak(delay=wait))
                return
            suspect = bool(record.suspect) or lost
            fast = (self._mark_after > 0 and not suspect and attempt == 1
                    and record.status != AdStatus.PROCESSING and self._held.started(key))
            if not fast:  # the record will tell whether it runs: it must not count as running meanwhile
                await self._unmark(key)
            async with (self._turns.turn(msg, ad_id) if suspect else self._gate.shared()) as alone:
                if alone is False:  # another suspect ad runs alone in the fleet: handed back (.suspect_turn)
                    settled = True
                    return
                if fast and not self._held.started(key):  # a suspect ad ran alone meanwhile: the record tells
                    fast = False
                if suspect and self._held.unmark_others(key):  # nothing else may count as running beside it
                    await self._announce_now()
                if fast:
                    self._pause.ok()  # the read answered
                    current = Versioned(settle.started(record, delivery), current.revision)
                    mark = ProcessingMark(settle, current, self._marks)
                    try:
                        outcome = await self._hooks.attempt(current.record, self._analyse)
                    finally:
                        current = await mark.stop()
                    marked = mark.marked
                else:
                    claimed = True  # from here a storage failure may leave a claim behind: undone before the nak
                    try:
                        state, current = await settle.begin(current, delivery, suspect, msg)
                    except STORAGE_ERRORS as exc:
                        raise _StorageDown(exc.message) from exc
                    self._pause.ok()
                    if state != "started":
                        settled = True
                        if state == "final":
                            self.stats.skipped += 1
                            await self._shielded(msg.ack())
                        elif state == "spent":
                            await settle.give_up(msg, current.record, delivery)
                        else:
                            await settle.stale(msg, current.record, delivery)
                        return
                    if suspect:  # it may crash us: no pull of ours at the server, what we hold there (.alone)
                        log.info("ad %s runs alone: it was in flight on a worker that stopped answering", ad_id,
                                 extra={"ad_id": ad_id, "worker_id": self.worker_id})
                        nc = self._registry.connection if self._registry is not None else None
                        await alone_at_queue(self._held, self._announce_now, nc, self.settings.nats.request_timeout,
                                             self._queue, ad_id)
                    outcome = await self._hooks.attempt(current.record, self._analyse)
                    marked = True
                settled = True
                if self.lease is not None and self.lease.lost(epoch) and await self._recovered(ad_id, delivery, mine):
                    return
                if isinstance(outcome, Analysis):
                    if self._analysed is not None:  # its slot may analyse another while this one is written
                        self._analysed(key)
                    await settle.complete(msg, current, outcome, delivery)
                else:
                    await settle.fail(msg, current, outcome, delivery, marked=marked)
        except asyncio.CancelledError:
            if not settled and mine not in self.taken:  # (taken: recovered from us, .lease)
                await self._shielded(settle.hand_back(msg, ad_id, delivery))
            raise
        except _StorageDown as exc:
            # Nothing was charged: hand it back after a back-off, and pull nothing new meanwhile.
            delay = self._pause.failed(QueueUnavailable(str(exc)))
            log.debug("ad %s: our storage failed (%s); handed back uncharged, retry in %.1fs", ad_id, exc,
                      delay, extra={"ad_id": ad_id})
            claimed = claimed and may_have_landed(exc.__cause__ or exc)  # a refused claim left nothing behind
            await self._shielded(self._hand_back_unstarted(msg, ad_id, delivery, delay, claimed))
        except Exception as exc:  # noqa: BLE001 - one bad ad must not stop the worker
            await self.answer(msg, ad_id, exc)
        finally:
            self.running.pop(mine, None)
            self.taken.discard(mine)
            await self._hooks.after_delivery(held)

    async def answer(self, msg: Msg, ad_id: str, exc: Exception) -> None:
        """What the handling of ``msg`` (ad ``ad_id``) does about ``exc``, raised after its delivery started (also
        for the batch start's analysed ads, :mod:`.batch_start`): a newer gamead's record (put back for a newer
        worker), a withdrawn ad (acknowledged, never run or made again), poison (terminated once), a reply NATS was
        not sent (said), anything else (logged, counted in ``stats.last_error``). Never raises."""
        if isinstance(exc, LeftForNewer):  # a newer gamead's record: neither rebuilt nor run here (review31 R10)
            self.stats.left_for_newer += 1
            left_for_newer("delivery")  # gamead_ads_left_for_newer_total on the worker's /metrics
            if self.stats.left_for_newer == 1:  # said once; the rest are counted (the worker's status, /metrics)
                log.warning("ad %s: %s; this older worker leaves it (and any other such ad) to a newer worker, its "
                            "delivery put back every %.0fs (README \"Upgrades\")", ad_id, exc, NEWER_WAIT,
                            extra={"ad_id": ad_id})
            try:
                await self._shielded(msg.nak(delay=NEWER_WAIT))
            except Exception:  # noqa: BLE001 - ack_wait brings it back anyway
                pass
        elif isinstance(exc, Withdrawn):  # its client was told "not queued": neither run nor made again (fix34b)
            log.warning("ad %s: %s, yet a message of it was queued (a reaper of an older gamead, a hand-made "
                        "publish): acknowledged without analysing it or making its record; GET /ads/%s stays 404",
                        ad_id, exc, ad_id, extra={"ad_id": ad_id})
            try:
                await self._shielded(msg.ack())
            except Exception:  # noqa: BLE001 - ack_wait brings it back, and it is dropped again
                pass
        elif isinstance(exc, NotAnAd):  # not what the API publishes (gamead_core.worker.poison): nothing made from it
            await self._settle.not_an_ad(msg, exc)
        elif isinstance(exc, NOT_SENDING):  # a reply (ack, nak, term) the connection could not send: not a bug
            log.info("ad %s: a reply to NATS was not sent (%s); unless it was acknowledged, it comes back after "
                     "queue.ack_wait", ad_id, exc, extra={"ad_id": ad_id})
        else:  # e.g. an outcome write that kept losing its compare-and-set: handed back, not left to ack_wait (F2)
            self.stats.last_error = repr(exc)
            delay = backoff(msg.metadata.num_delivered or 1, base=self.settings.worker.backoff_base,
                            cap=self.settings.worker.backoff_cap)
            done = await settle_unexpected(self._settle.store, self._shielded, msg, ad_id, delay)  # (review41 F6)
            log.error("ad %s: unexpected error; %s", ad_id, DONE[done].format(delay=delay), exc_info=exc,
                      extra={"ad_id": ad_id})

    async def _hand_back_unstarted(self, msg: Msg, ad_id: str, delivery: str, delay: float, claimed: bool) -> None:
        """``nak(delay)`` a delivery our storage failing kept from starting; one whose claim may have landed
        (``claimed``) has it undone or fenced off first (:func:`~.give_back.unclaim`, regress36 F4), within the
        share of ``queue.ack_wait`` in which nobody else can have been given the delivery (``NAK_WINDOW``)."""
        what = "back"
        if claimed:
            what = await unclaim(self._settle.store, self._pause, self._shielded, ad_id, delivery,
                                 within=self.settings.queue.ack_wait * NAK_WINDOW)
        try:
            if what == "back":
                await msg.nak(delay=delay)
            elif what == "final":
                await msg.ack()
        except Exception:  # noqa: BLE001 - ack_wait brings it back anyway
            pass

    async def _recovered(self, ad_id: str, delivery: str, mine: tuple[str, str]) -> bool:
        """After a lapse of the lease: whether a recovery took ``delivery`` back (said once; the record read, unless
        :class:`~.lease.InDoubt` found it so meanwhile, ``mine`` in :attr:`taken`)."""
        try:
            if mine not in self.taken and not recovered((await self._settle.store.get(ad_id)).record, delivery,
                                                         self.worker_id):
                return False
        except (GameadError, ValueError):  # unreadable: the outcome's compare-and-set decides
            return False
        if mine not in self.taken:  # (else said by InDoubt)
            log.warning("ad %s: analysed under delivery %s, but this worker's lease lapsed meanwhile and a recovery "
                        "took the ad back: nothing written", ad_id, delivery, extra={"ad_id": ad_id})
        return True

    async def _unmark(self, key: HeldKey) -> None:
        if self._held.unmark(key):
            await self._announce_now()

    async def _announce_now(self) -> None:
        if self._announce is not None:
            await self._announce()

    async def _analyse(self, record: AdRecord) -> Analysis:
        delay = self.settings.analysis.simulated_latency_ms
        if delay:
            await asyncio.sleep(delay / 1000)
        check_analysable(record.ad)
        return analyze(record.ad)


#: subject → its priority level (None: not a level's subject), for the log fields: parsed once per subject
_SUBJECT_LEVELS: dict[str, int | None] = {}
_SUBJECT_LEVELS_MAX = 1024  #: bounded whatever subjects come (a work stream has 5 per partition)


def _level(subject: str) -> int | None:
    level = _SUBJECT_LEVELS.get(subject, -1)
    if level != -1:
        return level
    try:
        level = names.level_of_subject(subject)
    except (ValueError, IndexError):
        level = None
    if len(_SUBJECT_LEVELS) < _SUBJECT_LEVELS_MAX:
        _SUBJECT_LEVELS[subject] = level
    return level
