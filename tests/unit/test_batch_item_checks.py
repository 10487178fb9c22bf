"""The batch start's per-ad bookkeeping made cheaper decides and counts as before (issue 14, drain46): a first
delivery whose record is a fresh ``queued`` one, as the API writes it, is taken by the batch on one look at its
fields, and every other record still goes through the full checks, so the batch takes exactly the records the
full checks let through; an ad its round wrote is counted by ``Settler.counted`` as ``Settler.completed`` counts
it (no coroutine per ad). Pure: messages built in memory, no server."""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from datetime import timedelta

from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.models import AdError, AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.store.ads import Versioned, encode
from gamead_core.telemetry.metrics import WorkerMetrics
from gamead_core.worker.batch_start import BatchStart
from gamead_core.worker.budget import budget_spent, delivery_id, lost_attempt, superseded
from gamead_core.worker.held import HeldAds
from gamead_core.worker.settle import Settler
from gamead_core.worker.transitions import started_record

MAX_ATTEMPTS = 3
SEQ = 1000  #: the stream sequence of every delivery here: its delivery id is "1000.1"
AD = AdSubmission(title="Dragon quest", description="Slay the dragon, save the town. Play free now!", genre="rpg",
                  target_audience=["18-24"], visual_elements=["dragon"], call_to_action="Play now", duration=30,
                  priority=2)


def delivery(record: AdRecord) -> Msg:
    """A first delivery of ``record`` as the API publishes it: stored now, naming revision 7."""
    reply = f"$JS.ACK.GAMEAD_ADS.gamead-level-2.1.{SEQ}.{SEQ}.{time.time_ns()}.0"
    return Msg(_client=None, subject="gamead.ads.p2", reply=reply, data=encode(record),  # type: ignore[arg-type]
               headers={names.HDR_AD_ID: record.id, names.HDR_RECORD_REVISION: "7"})


def full_checks_pass(rec: AdRecord) -> bool:
    """The checks every record went through before drain46 (batch_start._item's condition, negated)."""
    own = delivery_id(SEQ, 1)
    return not (rec.status.terminal or rec.status == AdStatus.PROCESSING or rec.suspect
                or rec.dead_letter_error is not None or superseded(rec, own) or budget_spent(rec, MAX_ATTEMPTS)
                or lost_attempt(rec, own))


def test_the_batch_takes_exactly_the_records_the_full_checks_let_through() -> None:
    batch = BatchStart.__new__(BatchStart)  # _item needs the held ledger and the budget only
    batch._max_attempts = MAX_ATTEMPTS
    error = AdError(error_class="Boom", message="x", retryable=False, at=utcnow())
    fresh = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                     ad=AD)
    taken = refused = 0
    for status, where, suspect, dead, attempts in itertools.product(
            AdStatus, (None, "999.1", "1000.1", "1000.2", "1001.1", "junk"), (None, False, True), (None, error),
            range(MAX_ATTEMPTS + 2)):
        rec = fresh.model_copy(update={"status": status, "delivery": where, "suspect": suspect,
                                       "dead_letter_error": dead, "attempts": attempts})
        msg = delivery(rec)
        batch._held = held = HeldAds()
        held.hold_delivery(msg)
        held.mark_started((msg.metadata.stream, SEQ))
        item = batch._item(msg)
        assert (item is not None) == full_checks_pass(rec), rec
        if item is not None:
            assert item[1:3] == ((msg.metadata.stream, SEQ), "1000.1") and item[3].record == rec
            assert item[3].revision == 7
        taken, refused = taken + (item is not None), refused + (item is None)
    assert taken and refused  # both kinds met (the fresh record among those taken)


def test_a_written_ad_is_counted_as_settler_completed_counts_it() -> None:
    class Pause:
        oks = 0

        def ok(self) -> None:
            self.oks += 1

    def settler() -> Settler:
        s = Settler.__new__(Settler)
        s._pause, s.metrics, s.store = Pause(), WorkerMetrics(False), None
        s.stats = type("Stats", (), {"processed": 0, "last_progress": 0.0, "recent": collections.deque()})()
        return s

    rec = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2,
                   submitted_at=utcnow() - timedelta(seconds=3), ad=AD)
    started = started_record(rec, "1000.1", "w-1")
    now = started.started_at + timedelta(milliseconds=40)  # type: ignore[operator]
    old, new = settler(), settler()
    asyncio.run(old.completed(delivery(rec), Versioned(started, 7), None, "1000.1", now, 8))  # type: ignore[arg-type]
    new.counted(started, now)
    for s in (old, new):
        assert s.stats.processed == 1 and s._pause.oks == 1  # type: ignore[attr-defined]
        [(_, processing_ms, wait_ms)] = s.stats.recent
        assert abs(processing_ms - 40) < 0.01 and 2990 < wait_ms < 3100
    assert old.metrics.processing.counts(time.time()) == new.metrics.processing.counts(time.time())
