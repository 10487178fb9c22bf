"""Whether the delivery an ad's record names as running is still held by a live worker (attack31a F10).

A second work message of an ad (a copy published by hand, a repair or sweep racing a slow analysis) reaches a
worker while the record says ``processing`` under another, earlier delivery. That used to be taken as a dead
worker's lost attempt ("never ended and no recovery of that worker's death reached it first") and the ad ran a
second time beside the first. The holder's registry entry tells: entries expire ``registry.ttl`` after its last
heartbeat, and a live worker lists every delivery it holds (``holding``, announced before the analysis starts:
:mod:`gamead_core.worker.held`). Only when the registry is read and the named delivery is held there is the
second delivery put back (:func:`holder_of`); an entry that is gone, a delivery not held, or a registry that
cannot be read leave today's verdict (lost: charged, runs alone).
"""

from __future__ import annotations

import logging

from gamead_core.models import AdRecord
from gamead_core.registry import Registry

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger, as handle.py's


async def holder_of(registry: Registry | None, record: AdRecord) -> str | None:
    """The id of the live worker holding ``record.delivery`` of ``record.id`` (``record.worker_id``, when its
    registry entry lists that delivery in ``holding``), else None (no such entry, not held, no registry, or the
    registry could not be read: logged at DEBUG). One registry read (two for an id whose key an older gamead made
    otherwise, nothing being under its own: :meth:`~gamead_core.registry.kv.Registry.lookup`)."""
    if registry is None or not record.worker_id or not record.delivery:
        return None
    try:
        info, _ = await registry.lookup(record.worker_id)
    except Exception as exc:  # noqa: BLE001 - cannot be told: the record's verdict stands
        log.debug("ad %s: the registry entry of %s could not be read: %r", record.id, record.worker_id, exc)
        return None
    if info is None or not any(h.ad_id == record.id and h.delivery == record.delivery for h in info.holding):
        return None
    return info.id


__all__ = ["holder_of"]
