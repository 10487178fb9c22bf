"""A shutdown's hand-back of one delivery (:func:`give_back`): its started attempt refunded, then ``nak`` at once."""

from __future__ import annotations

import logging

import nats.errors
from nats.aio.msg import Msg

from gamead_core.errors import GameadError, error_text
from gamead_core.models import AdRecord, utcnow
from gamead_core.store.ads import AdStore
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.transitions import handed_back

log = logging.getLogger("gamead_core.worker.settle")  # the settler's logger, as before the split


async def give_back(store: AdStore, stats: WorkerStats, msg: Msg, ad_id: str, delivery: str) -> None:
    """Shutdown: give the ad ``ad_id`` (``msg``, under ``delivery``) back at once. A started attempt is refunded
    (record ``queued`` again) before the ``nak``; a delivery that had not started is claimed in the record, so
    nobody mistakes it for one still held (see the reaper); a final ad's message is acknowledged. Counted in
    ``stats.handed_back``. Never raises."""
    now = utcnow()

    def back(rec: AdRecord) -> AdRecord | None:
        return handed_back(rec, delivery, now)

    try:
        if await store.mutate(ad_id, back) is None:
            if (await store.get(ad_id)).record.status.terminal:
                await msg.ack()
            return
    except (GameadError, ValueError, nats.errors.Error) as exc:  # (an ack refused: ack_wait brings it back)
        log.warning("ad %s: could not refund its attempt on hand-back: %s", ad_id,
                    error_text(exc), extra={"ad_id": ad_id})
    try:
        await msg.nak()
        stats.handed_back += 1
    except Exception as exc:  # noqa: BLE001 - ack_wait brings it back anyway
        log.warning("ad %s: hand-back failed: %r", ad_id, exc, extra={"ad_id": ad_id})
