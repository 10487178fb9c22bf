"""The ads an API left ``queued`` without a work message when it died: queued by the reaper (:class:`Orphans`).

The un-keyed submit path creates an ad's record, then publishes its message (:mod:`gamead_core.intake`). An API
killed between the two leaves a ``queued`` record no worker will ever see, and its background settling
(:mod:`gamead_core.unsettled`) dies with it: a reviewer's ``kill -9`` during a 300 ads/s burst left 30 such records
for over 5 minutes, until ``gamead doctor --repair``. Now the holder of the reaper lease settles them, with no work
added per ad to the submit path or to the worker's handling of an ad:

* **whose**: each API record create carries ``Gamead-Origin: <incarnation>`` (:data:`gamead_core.names.HDR_ORIGIN`,
  :func:`gamead_core.registry.api_incarnation`: node id, pid, start time), a header of the records' stream
  message. The bucket keeps one message per key, so a message that still carries it is the record exactly as
  that API created it: no worker, sweep, recovery or repair has written it since.
* **when**: the reaper (:func:`gamead_core.worker.reaper.run_reaper`) sees an API's registry entry expire (the
  node went silent: ``registry.ttl``) or come back as another incarnation (:func:`api_deaths`); a clean shutdown
  deletes its entry, settles its own writes and is not a death.
* **what**: the records' stream is read once per death, headers only, from the later of the API's start and
  ``queue.duplicate_window`` − :data:`SAFETY` s ago (an ordered consumer from a start time: the records last
  written since, one message per key; not the whole store). Each message with the dead incarnation's origin is
  read (one get by sequence) and, if it is a fresh un-keyed ``queued`` record, its work message is published
  exactly as the API would have: the same bytes, ``Nats-Msg-Id`` = the ad id, ``Gamead-Record-Revision``.
* **never twice**: JetStream drops a message whose id it stored within the work stream's duplicate window, still
  in the stream or already consumed and acknowledged (measured on nats-server 2.15.1: a repeat after the ack is
  answered ``duplicate``, one after the window is stored). The API publishes after its create, so for a record
  written less than ``duplicate_window`` − :data:`SAFETY` s ago (checked just before publishing, the server's
  time of the create against this host's clock) the API's own publish, if it landed, is still remembered: the
  ad is queued again only if it never was. Older ones are left to ``gamead doctor`` (logged when the read
  finds them; records written before the read's start are not read at all).
* **bound**: the entry's expiry (``registry.ttl``, 10 s) + a reaper round (``heartbeat_interval`` / 2) + the
  read: about 15 s after the death by default. A settling that fails is tried again every round until the
  window closes, by whoever holds the lease then if it saw the death.

Limits: a death is seen only by a lease holder that saw the API alive (no worker running then: the doctor's);
the dead API's writes settled in the background (a create unanswered in a NATS stall, told 503 and withdrawn; a
refused publish whose take-back failed) are not told apart: the ad runs; an API cut off from NATS longer than
``registry.ttl`` is taken for dead unless its entry is back before the publish (checked).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import nats.js.errors
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.errors import GameadError, error_text
from gamead_core.models import AdStatus
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.publish import Outgoing, Published, publish_ads
from gamead_core.queue.scan import read_stream
from gamead_core.registry import NodeInfo, Registry, deaths, incarnation
from gamead_core.store.ads import decode

log = logging.getLogger(__name__)

#: seconds kept from the duplicate window: clock skew between this host and the server, and the time the publish
#: takes (a record is re-published only while created less than ``duplicate_window - SAFETY`` s ago)
SAFETY = 20.0


def api_deaths(before: dict[str, NodeInfo], after: dict[str, NodeInfo]) -> list[NodeInfo]:
    """API nodes of ``before`` gone from ``after`` or back as another incarnation
    (:func:`gamead_core.registry.deaths`; pure)."""
    return deaths(before, after, lambda node: node.role == "api")


@dataclass
class OrphanReport:
    """What the settling of one dead API did."""

    origin: str
    republished: int = 0  #: messages stored now: the API had died before its publish
    already: int = 0  #: messages JetStream answered duplicate: the API's own publish had landed
    too_old: int = 0  #: created too long ago to re-publish safely: left to gamead doctor
    failed: list[str] = field(default_factory=list)  #: ad ids whose publish got no answer: tried again


def _fresh(data: bytes, ad_id: str) -> int | None:
    """The priority of ``data`` if it is ``ad_id``'s record as an un-keyed submit creates it, else None."""
    try:
        record = decode(data)
    except ValueError:
        return None
    if (record.id != ad_id or record.status != AdStatus.QUEUED or record.attempts or record.idempotency_key
            or record.replay_of is not None or record.job_id or record.delivery):
        return None
    return record.priority


async def settle_dead_api(js: JetStreamContext, dead: NodeInfo, settings: GameadSettings, *,
                          registry: Registry | None = None) -> OrphanReport:
    """Queue the records the dead API ``dead`` created and left without their message (see the module doc).
    Raises :class:`~gamead_core.errors.GameadError` when the records' stream cannot be read (tried again later)."""
    origin = incarnation(dead.id, dead.pid, dead.started_at)
    report = OrphanReport(origin)
    window, now = settings.queue.duplicate_window, time.time()
    since = max(dead.started_at.timestamp(), now - window + SAFETY)
    stream, found = names.ADS_BUCKET_STREAM, []
    async for msg in read_stream(js, stream, names.kv_prefix(names.ADS_BUCKET) + ">", headers_only=True,
                                 start_time=datetime.fromtimestamp(since, UTC), timeout=settings.nats.request_timeout):
        if (msg.headers or {}).get(names.HDR_ORIGIN) == origin:
            found.append((msg.subject.rsplit(".", 1)[-1], msg.metadata.sequence.stream, msg.metadata.timestamp))
    if not found:
        return report
    if registry is not None:
        back, _ = await registry.lookup(dead.id)
        if back is not None and incarnation(back.id, back.pid, back.started_at) == origin:
            return report  # its heartbeat is back: it was cut off from NATS (or stalled), not dead
    candidates: list[tuple[Outgoing, datetime]] = []
    for ad_id, seq, created in found:
        with nats_boundary():
            try:
                raw = await js.get_msg(stream, seq)
            except nats.js.errors.NotFoundError:
                continue  # written since: no longer as the API left it
        if raw.data and (level := _fresh(raw.data, ad_id)) is not None:
            candidates.append((Outgoing(ad_id, level, raw.data, seq), created))
    # the age is judged now, just before the publish, not before the reads (thousands of them can take longer
    # than SAFETY): a record whose API publish may have left the duplicate window is never published again
    outgoing: list[Outgoing] = []
    for out, created in candidates:
        if time.time() < created.timestamp() + window - SAFETY:
            outgoing.append(out)
            continue
        report.too_old += 1
        log.warning("ad %s: queued by API %s, which died before publishing it perhaps; created too long ago to "
                    "queue again safely: gamead doctor will name it (no_message)", out.ad_id, dead.id,
                    extra={"ad_id": out.ad_id, "origin": origin})
    answers = await publish_ads(js, outgoing, timeout=settings.nats.request_timeout,
                                partitions=settings.queue.partitions) if outgoing else []
    for out, answer in zip(outgoing, answers, strict=True):
        if not isinstance(answer, Published):
            report.failed.append(out.ad_id)
        elif answer.duplicate:
            report.already += 1
        else:
            report.republished += 1
            log.info("ad %s queued again: API %s died between its record and its message", out.ad_id, dead.id,
                        extra={"ad_id": out.ad_id, "origin": origin})
    return report


class Orphans:
    """The dead APIs whose records are still to be settled, tried every reaper round until done (or until
    ``queue.duplicate_window`` has passed since their death). ``reports``: the last report of each (tests)."""

    def __init__(self) -> None:
        self._pending: dict[str, NodeInfo] = {}
        self.reports: list[OrphanReport] = []

    def died(self, node: NodeInfo) -> None:
        """``node`` (an API) died: settle its records from the next :meth:`settle` on."""
        self._pending[incarnation(node.id, node.pid, node.started_at)] = node

    async def settle(self, js: JetStreamContext, settings: GameadSettings, registry: Registry) -> None:
        """Settle every dead API pending (see :func:`settle_dead_api`). Never raises: a failure is logged and
        that death tried again next time, while its heartbeat is younger than the duplicate window."""
        for origin, node in list(self._pending.items()):
            try:
                report = await settle_dead_api(js, node, settings, registry=registry)
            except GameadError as exc:
                report = None
                log.warning("settling the records of dead API %s: %s (tried again)", node.id, exc.message)
            except Exception as exc:  # noqa: BLE001 - one bad death must not stop the reaper
                report = None
                log.warning("settling the records of dead API %s: %s (tried again)", node.id, error_text(exc))
            if report is not None:
                self.reports.append(report)
                log.log(logging.WARNING if report.republished or report.too_old else logging.INFO,
                        "dead API %s: %d record(s) without a message queued again, %d had theirs, %d too old "
                        "(left to gamead doctor), %d unanswered", node.id, report.republished, report.already,
                        report.too_old, len(report.failed),
                        extra={"origin": origin, "republished": report.republished, "already": report.already,
                               "too_old": report.too_old, "unanswered": len(report.failed)})
            done = report is not None and not report.failed
            if done or time.time() > node.heartbeat_at.timestamp() + settings.queue.duplicate_window:
                self._pending.pop(origin, None)


__all__ = ["SAFETY", "OrphanReport", "Orphans", "api_deaths", "settle_dead_api"]
