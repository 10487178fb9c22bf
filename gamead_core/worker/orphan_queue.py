"""Queueing again the records a dead API left without a work message, once read (:func:`queue_again`): the
**what** and **never twice** of :mod:`gamead_core.worker.orphans`, whose rounds call it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import nats.js.errors
from nats.js import JetStreamContext

from gamead_core import clock, names
from gamead_core.config import GameadSettings
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.publish import Outgoing, Published, publish_ads
from gamead_core.registry import NodeInfo
from gamead_core.worker.orphan_read import Found
from gamead_core.worker.orphan_reput import fresh, put_again

log = logging.getLogger("gamead_core.worker.orphans")  # its lines are the reaper's orphan settling's

#: seconds kept from the duplicate window (a record is re-published only while created less than
#: ``duplicate_window - SAFETY`` s ago): the error of this process's sample of nats-server's clock (± half a
#: registry put's round trip, :mod:`gamead_core.clock`), the time the publish takes after the check, and the
#: server's own rounding of its window. Not the skew of this host's wall clock: every time compared here is
#: nats-server's (a reaper 5 min behind re-published ads whose messages existed, attack33a F4; one 5 min ahead
#: read nothing of a dead API, F12).
SAFETY = 20.0


@dataclass
class OrphanReport:
    """What the settling of one dead API did."""

    origin: str
    republished: int = 0  #: messages stored now: the API had died before its publish
    already: int = 0  #: messages JetStream answered duplicate: the API's own publish had landed
    too_old: int = 0  #: created too long ago to re-publish safely: left to gamead doctor
    changed: int = 0  #: re-put lost (deleted by its live API, or written since): nothing published
    failed: list[Found] = field(default_factory=list)  #: records whose publish got no answer: tried again


async def queue_again(js: JetStreamContext, dead: NodeInfo, origin: str, found: list[Found],
                      settings: GameadSettings) -> OrphanReport:
    """Publish the work message of each record of ``found`` still exactly as the dead API created it (its key's
    last message read: one get each), re-put first by compare-and-set (a record this reaper re-put already, its
    publish unanswered, is published as it is), and young enough for JetStream to drop a repeat (the module doc)."""
    report, stream, window = OrphanReport(origin), names.ADS_BUCKET_STREAM, settings.queue.duplicate_window
    candidates: list[tuple[Outgoing, datetime]] = []
    creates: set[str] = set()  # still the API's create: re-put before the publish
    for ad_id, _, created in found:
        with nats_boundary():
            try:
                raw = await js.get_last_msg(stream, names.kv_subject(names.ADS_BUCKET, ad_id))
            except nats.js.errors.NotFoundError:
                continue  # purged: nothing to queue
        whose = (raw.headers or {}).get(names.HDR_ORIGIN)
        if raw.data and raw.seq and whose in (origin, None) and (level := fresh(raw.data, ad_id)) is not None:
            candidates.append((Outgoing(ad_id, level, raw.data, raw.seq), created))
            if whose == origin:
                creates.add(ad_id)
    # the age is judged now, just before the publish, not before the reads (thousands of them can take longer
    # than SAFETY): a record whose API publish may have left the duplicate window is never published again
    young: list[tuple[Outgoing, datetime]] = []
    for out, created in candidates:
        if clock.now() < created.timestamp() + window - SAFETY:
            young.append((out, created))
            continue
        report.too_old += 1
        log.warning("ad %s: queued by API %s, which died before publishing it perhaps; created too long ago to "
                    "queue again safely: gamead doctor will name it (no_message)", out.ad_id, dead.id,
                    extra={"ad_id": out.ad_id, "origin": origin})
    young = await put_again(js, young, creates, report, settings.nats.request_timeout)
    answers = await publish_ads(js, [out for out, _ in young], timeout=settings.nats.request_timeout,
                                partitions=settings.queue.partitions) if young else []
    for (out, created), answer in zip(young, answers, strict=True):
        if not isinstance(answer, Published):
            report.failed.append((out.ad_id, out.revision or 0, created))
        elif answer.duplicate:
            report.already += 1
        else:
            report.republished += 1
            log.info("ad %s queued again: API %s died between its record and its message", out.ad_id, dead.id,
                     extra={"ad_id": out.ad_id, "origin": origin})
    return report


__all__ = ["SAFETY", "OrphanReport", "queue_again"]
