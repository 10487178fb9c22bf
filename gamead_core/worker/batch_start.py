"""The batch start: the first deliveries of one start step run in one task, not a task and a handler chain each
(issue 14, session 36).

At a backlog a start step starts ~4 ads at once (one per free slot), and each used to get a task of its own running
:class:`~gamead_core.worker.handle.AdHandler`: its log fields, hooks (keep-alive, time limit), gate, delayed mark
and settle call, each a coroutine resumed twice (started, then woken by its settle round). Session 35's prototype
sized what that chain costs at ~7-12 % of the worker's CPU in a burn-down. :class:`BatchStart` does the common case
of all of them in one task, in the order the step started them: each ad's record taken from its message, its
analysis, its completed record queued into the settle round (:mod:`gamead_core.worker.rounds`); then the round's
results awaited together and each ad ended.

The batch start takes only what the handler's fast path would have done without a single await of its own, so nothing an
ad can see changes: a first delivery (``num_delivered == 1``) still flagged ``started`` in the held ledger, whose
``Gamead-Ad-Id`` is an issued id and whose body is that ad's record at the revision it names, published at submit
(:func:`~gamead_core.worker.records.trusted_record`), neither final, ``processing``, superseded, spent, waiting for
the DLQ, suspect nor a lost attempt; on a worker with only its own hooks (no ``worker.faults``), no simulated
latency and tracing off, with the :class:`~gamead_core.worker.solo.SoloGate` open. Such an analysis never yields
to the event loop, so its time limit and its delayed ``processing`` mark (timers) could never fire during it:
leaving them out changes nothing. Every other delivery, and one whose analysis raises, is handed to the handler
(its own task) before anything is written: it reads and decides it all again, as before.

The guarantees are the handler's: the outcome written (compare-and-set over the revision the message names) before
the ``ack`` (the round's); the ad held (heartbeat, keep-alive, hand-back on shutdown) until it is settled; its slot
given back once analysed (:class:`~gamead_core.worker.slots.SlotWatch`); a write the round could not make (lost
compare-and-set, storage failing) finished by :meth:`~gamead_core.worker.settle.Settler.completed` in a task of its
own, as the handler finishes it. A shutdown that cancels the batch while it awaits its round does not cut the round
(a task of the worker's shield): its writes and acks still happen, as for a cancelled handler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg

from gamead_core import clock, names
from gamead_core.config import GameadSettings
from gamead_core.logs import pop_ad_fields, push_ad_fields
from gamead_core.models import AdRecord, AdStatus, Analysis, utcnow
from gamead_core.store.ads import Versioned
from gamead_core.telemetry.tracing import enabled as tracing_enabled
from gamead_core.worker.analyzer import analyze, check_analysable
from gamead_core.worker.budget import (
    budget_spent,
    delivery_id,
    lost_attempt,
    superseded,
)
from gamead_core.worker.completed_json import completed_bytes_of
from gamead_core.worker.handle import AdHandler
from gamead_core.worker.held import HeldAds, HeldKey
from gamead_core.worker.keepalive import AckWaitKeepAlive
from gamead_core.worker.poison import NotAnAd, check_ad_id
from gamead_core.worker.records import trusted_record
from gamead_core.worker.slots import SlotWatch

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger, as the handler's

#: One ad the batch runs: its delivery, held key, delivery id and record (the message's, at its revision).
Item = tuple[Msg, HeldKey, str, Versioned]


def batch_usable(settings: GameadSettings, extra_hooks: int) -> bool:
    """Whether a worker with these settings and ``extra_hooks`` hooks of its caller's may use the batch at all: the
    fast path on (``worker.processing_mark_after`` > 0), no fault injection, no simulated latency (an analysis
    that never yields), no hooks but its own. Tracing is asked per step (:meth:`BatchStart.split`)."""
    w = settings.worker
    return (w.processing_mark_after > 0 and w.faults.rate <= 0 and not settings.analysis.simulated_latency_ms
            and extra_hooks == 0)


class BatchStart:
    """The batch start of one worker. ``handler``: the worker's :class:`AdHandler` (its settler, gate, stats, storage
    pause); ``handoff(msg)``: run ``msg`` through the handler in a task of its own instead (the worker counts it
    there); ``track(coro)``: run a finishing step as a task the worker's drain waits for; ``ended(key)``: the ad is
    settled (the worker's held ledger, counts and wake-up); ``running()``: the worker's ``inFlight`` now."""

    def __init__(self, handler: AdHandler, *, held: HeldAds, keepalive: AckWaitKeepAlive, slots: SlotWatch,
                 handoff: Callable[[Msg], None], track: Callable[[Coroutine[Any, Any, None]], None],
                 ended: Callable[[HeldKey], None], running: Callable[[], int]) -> None:
        self._handler, self._held, self._keepalive, self._slots = handler, held, keepalive, slots
        self._handoff, self._track, self._ended, self._running = handoff, track, ended, running
        self._max_attempts = handler.settings.worker.max_attempts

    @staticmethod
    def split(msgs: list[Msg]) -> tuple[list[Msg], list[Msg]]:
        """(for the batch, for the handler): first deliveries may take the batch (checked in full when it runs)."""
        if tracing_enabled():
            return [], msgs
        lane, rest = [], []
        for msg in msgs:
            (lane if (msg.metadata.num_delivered or 1) == 1 else rest).append(msg)
        return lane, rest

    def _item(self, msg: Msg) -> Item | None:
        """``msg`` as the batch runs it, or None when the handler must (the module doc's conditions). Pure."""
        meta = msg.metadata
        key = (meta.stream, meta.sequence.stream)
        if (meta.num_delivered or 1) != 1 or not self._held.started(key):
            return None
        ad_id = (msg.headers or {}).get(names.HDR_AD_ID)
        try:
            check_ad_id(ad_id)
        except NotAnAd:
            return None
        current = trusted_record(msg, ad_id)  # type: ignore[arg-type]  # checked above
        if current is None:
            return None
        rec, delivery = current.record, delivery_id(meta.sequence.stream, 1)
        if (rec.status is AdStatus.QUEUED and rec.delivery is None and not rec.suspect  # a fresh ad, as the API
                and rec.dead_letter_error is None and rec.attempts < self._max_attempts):  # wrote it: none of below
            return msg, key, delivery, current  # (drain46: ~1.2 of the checks' ~1.6 µs per ad)
        if (rec.status.terminal or rec.status == AdStatus.PROCESSING or rec.suspect or rec.dead_letter_error
                is not None or superseded(rec, delivery) or budget_spent(rec, self._max_attempts)
                or lost_attempt(rec, delivery)):
            return None
        return msg, key, delivery, current

    async def run(self, msgs: list[Msg]) -> None:
        """Run ``msgs`` (first deliveries of one start step, held and counted by the worker): the batch's ads
        analysed and queued into the settle round, the others handed to the handler; then each ad ended once its
        round answered. Never raises but :class:`asyncio.CancelledError`."""
        handler = self._handler
        gate, settle, stats = handler._gate, handler._settle, handler.stats  # noqa: SLF001 - the handler's own
        items: list[Item] = []
        for msg in msgs:
            try:
                item = None if gate.blocked else self._item(msg)
            except Exception:  # noqa: BLE001 - whatever it is, the handler meets it again and answers it
                item = None
            if item is None:
                self._handoff(msg)
            else:
                items.append(item)
        if not items:
            return
        if gate.running == 0:  # idle time is not "no progress" (as the handler)
            stats.last_progress = clock.now()
        handler._pause.ok()  # noqa: SLF001 - the read answered (the message's record), as the handler says it
        queued: list[tuple[asyncio.Future[Any], Msg, HeldKey, str, Versioned, datetime, Analysis, datetime]] = []
        worker_id = handler.worker_id
        for msg, key, delivery, current in items:
            gate.running += 1  # the gate is open (checked above, in this turn): entering it never waits
            self._slots.took(key)
            try:  # its processing record (settle.started) is built only if its write does not succeed (drain46)
                began, rec = utcnow(), current.record
                check_analysable(rec.ad)
                analysis = analyze(rec.ad)
                now = utcnow()
                done = completed_bytes_of(rec, delivery, worker_id, began, now, analysis)
            except Exception:  # noqa: BLE001 - its failure is the handler's to classify and write: it runs it again
                gate.leave()
                self._slots.ended(key)
                self._handoff(msg)
                continue
            if self._slots.analysed(key):  # its slot may analyse another while this one is written
                self._held.unmark(key)
            future = settle.rounds.complete(msg, rec.id, done, current.revision)
            queued.append((future, msg, key, delivery, current, began, analysis, now))
        stats.in_flight = self._running()
        left = queued
        try:
            while left:
                future, msg, key, delivery, current, began, analysis, now = left[0]
                try:
                    first = await future
                except asyncio.CancelledError:
                    if not future.cancelled() or asyncio.current_task().cancelling():  # type: ignore[union-attr]
                        raise
                    left.pop(0)  # its round was cancelled (a stopping loop), not the batch: as its handler's task
                    self._end(key, msg)
                    continue
                except Exception as exc:  # noqa: BLE001 - answered as the handler answers it, in a task
                    left.pop(0)
                    self._track(self._finish(msg, key, current.record, None, exc))
                    continue
                left.pop(0)
                if isinstance(first, int):
                    settle.counted(current.record, now, began)  # settle.completed's own, without a coroutine
                    self._end(key, msg)
                else:  # lost its compare-and-set or our storage failed: finished as the handler finishes it
                    started = Versioned(settle.started(current.record, delivery, at=began), current.revision)
                    self._track(self._finish(msg, key, current.record,
                                             settle.completed(msg, started, analysis, delivery, now, first)))
        finally:
            for _, msg, key, *_ in left:  # cancelled (a shutdown): their writes and acks go on in the round
                self._end(key, msg)

    async def _finish(self, msg: Msg, key: HeldKey, record: AdRecord, step: Coroutine[Any, Any, None] | None,
                      error: Exception | None = None) -> None:
        """Await ``step`` (or take ``error``) for the batch's ad ``key`` in a task of its own, with the ad's log
        fields; what it raises answered by the handler (:meth:`AdHandler.answer`); then the ad ended."""
        ad_id = record.id
        token = push_ad_fields({"ad_id": ad_id, "worker_id": self._handler.worker_id, "priority": record.priority,
                                "delivery": 1})
        try:
            if step is None:
                raise error  # type: ignore[misc]
            await step
        except Exception as exc:  # noqa: BLE001 - one bad ad must not stop the worker
            await self._handler.answer(msg, ad_id, exc)
        finally:
            pop_ad_fields(token)
            self._end(key, msg)

    def _end(self, key: HeldKey, msg: Msg) -> None:
        """The ad ``key`` is settled (or its handling ended): out of the gate and the keep-alive, its slot free."""
        self._handler._gate.leave()  # noqa: SLF001
        self._keepalive.release(msg)
        self._ended(key)


__all__ = ["BatchStart", "batch_usable"]
