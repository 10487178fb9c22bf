"""Handing one delivery back with nothing charged: a shutdown's (:func:`give_back`: its started attempt refunded,
then ``nak`` at once), and one whose claim met our storage failing (:func:`unclaim`: the claim undone or fenced
first)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
from nats.aio.msg import Msg

from gamead_core.errors import GameadError, QueueFull, StorageFailed, error_text
from gamead_core.models import AdRecord, AdStatus, utcnow
from gamead_core.queue.liveness import OutboundBacklog
from gamead_core.store.ads import AdStore
from gamead_core.worker.budget import NAK_WINDOW
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.storage_pause import STORAGE_ERRORS, StoragePause
from gamead_core.worker.transitions import handed_back, unclaimed

log = logging.getLogger("gamead_core.worker.settle")  # the settler's logger, as before the split

Shielding = Callable[[Awaitable[Any]], Awaitable[Any]]  #: a :class:`~gamead_core.worker.shield.Shield`
REFUND_RETRY = 0.5  #: seconds between two tries of a shutdown's refund our storage failed (:func:`give_back`)


async def give_back(store: AdStore, stats: WorkerStats, msg: Msg, ad_id: str, delivery: str, *,
                    ack_wait: float = 0.0) -> None:
    """Shutdown: give the ad ``ad_id`` (``msg``, under ``delivery``) back at once. A started attempt is refunded
    (record ``queued`` again) before the ``nak``; a delivery that had not started is claimed in the record, so
    nobody mistakes it for one still held (see the reaper); a final ad's message is acknowledged. Counted in
    ``stats.handed_back``. Never raises.

    A refund our storage fails (a NATS stall) is tried again every :data:`REFUND_RETRY` s while nobody else can have
    been given the delivery (``ack_wait`` × ``NAK_WINDOW``) and the worker's stop lasts: before stall38 one failure
    handed it back unrefunded, and the next delivery charged it as a lost attempt (``attempts`` 2 for one analysis,
    ``tests/integration/test_refund_stall.py``). A stall past that still leaves it charged (logged)."""
    now = utcnow()
    loop = asyncio.get_running_loop()
    until = loop.time() + ack_wait * NAK_WINDOW

    def back(rec: AdRecord) -> AdRecord | None:
        return handed_back(rec, delivery, now)

    while True:
        try:
            if await store.mutate(ad_id, back) is None:
                if (await store.get(ad_id, consistent=True)).record.status.terminal:  # the leader's (F1)
                    await msg.ack()
                return
            break
        except STORAGE_ERRORS as exc:
            if loop.time() + REFUND_RETRY < until:
                if ack_wait:  # said once: tried again until it lands, the window closes or the stop ends
                    log.info("ad %s: could not refund its attempt on hand-back yet (%s): trying again every %gs",
                             ad_id, error_text(exc), REFUND_RETRY, extra={"ad_id": ad_id})
                ack_wait = 0.0
                await asyncio.sleep(REFUND_RETRY)
                continue
            why: BaseException = exc
        except (GameadError, ValueError, nats.errors.Error) as exc:  # (an ack refused: ack_wait brings it back)
            why = exc
        log.warning("ad %s: could not refund its attempt on hand-back: %s", ad_id,
                    error_text(why), extra={"ad_id": ad_id})
        break
    try:
        await msg.nak()
        stats.handed_back += 1
    except Exception as exc:  # noqa: BLE001 - ack_wait brings it back anyway
        log.warning("ad %s: hand-back failed: %r", ad_id, exc, extra={"ad_id": ad_id})


def may_have_landed(exc: BaseException) -> bool:
    """Whether a record write that raised ``exc`` (a storage error) may still have landed, or may land later: its
    answer did not come in time, or the connection dropped after it was sent (nats-py sends its buffer again on
    reconnecting), or the server said busy (not decided). False when the server refused it (:class:`StorageFailed`:
    full or failing storage, :class:`QueueFull`) or it was never sent (``OutboundBacklog``). Pure."""
    return not (isinstance(exc, (StorageFailed, QueueFull)) or isinstance(exc.__cause__, OutboundBacklog))


async def unclaim(store: AdStore, pause: StoragePause, shielded: Shielding, ad_id: str, delivery: str, *,
                  within: float) -> str:
    """Before ``delivery`` of ``ad_id`` is handed back uncharged because its claim (the ``processing`` write that
    charges an attempt) met our storage failing in a way that :func:`may_have_landed`: a claim that landed though its
    answer was lost, or lands when a stalled server resumes, was later kept as a lost attempt (regress36 F4).
    :func:`~.transitions.unclaimed` is written by compare-and-set (refunds the claim, or fences it off by rewriting
    the record unchanged), tried again after each of ``pause``'s back-offs while our storage fails, for at most
    ``within`` seconds (the delivery's lease held meanwhile). Returns what to do with the message: ``"back"``
    (``nak``), ``"final"`` (the ad is final: ``ack``), ``"taken"`` (a later delivery owns the ad: leave the message
    to it). Never raises but cancellation; a record missing, unreadable or busy, or storage failing for ``within``
    seconds, is ``"back"`` (logged: the claim may then still be called a lost attempt)."""
    seen: list[AdRecord] = []

    def undo(rec: AdRecord) -> AdRecord | None:
        seen.append(rec)
        return unclaimed(rec, delivery)

    loop = asyncio.get_running_loop()
    until = loop.time() + within
    while True:
        try:
            if await shielded(store.mutate(ad_id, undo)) is not None:
                pause.ok()
                if seen[-1].status == AdStatus.PROCESSING and seen[-1].delivery == delivery:
                    log.info("ad %s: its claim under delivery %s landed though its answer was lost: refunded before "
                             "the hand-back", ad_id, delivery, extra={"ad_id": ad_id})
                return "back"
            pause.ok()
            return "final" if seen and seen[-1].status.terminal else "taken"
        except STORAGE_ERRORS as exc:
            delay = pause.failed(exc)
            if loop.time() + delay < until:
                await asyncio.sleep(delay)
                continue
            why = exc
        except (GameadError, ValueError) as exc:  # gone (the next delivery makes it again), busy, unreadable
            why = exc
        log.warning("ad %s: could not make sure that its claim under delivery %s charges nothing (%s); handed back "
                    "as it is", ad_id, delivery, error_text(why), extra={"ad_id": ad_id})
        return "back"
