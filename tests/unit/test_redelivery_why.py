"""Why a redelivery came (attack40b F4; gamead_core.worker.redelivery): the pure verdict from the record, the message's
metadata and the worker's own hand-backs, and its line. No servers."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats.aio.msg import Msg

from gamead_core.models import AdRecord, AdStatus
from gamead_core.worker import redelivery
from gamead_core.worker.naks_seen import MAX_BYTES, NaksSeen, parse_nak
from gamead_core.worker.redelivery import Redeliveries, Redelivery, say, why_redelivered

from tests.support import submission
from tests.waits import until

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
STORED = T0.timestamp()
ACK_WAIT = 30.0


def rec(status: AdStatus = AdStatus.QUEUED, **kw: object) -> AdRecord:
    return AdRecord(id="a1", status=status, priority=3, submitted_at=T0, ad=submission(), **kw)


def why(record: AdRecord, count: int = 2, after: float = 31.0, seq: int = 7, handed_ago: float | None = None) -> str:
    return why_redelivered(record, seq=seq, count=count, stored_at=STORED, now=STORED + after, ack_wait=ACK_WAIT,
                           handed_ago=handed_ago).why


def test_a_delivery_with_no_trace_that_came_after_ack_wait_is_lost() -> None:
    """The untouched ``queued`` record of a delivery dropped on its way: no attempt, no hand-back, 31 s ≥ ack_wait."""
    seen = why_redelivered(rec(), seq=7, count=2, stored_at=STORED, now=STORED + 31.0, ack_wait=ACK_WAIT)
    assert seen == Redelivery("lost", 2, 31.0, 31.0, None)


def test_one_back_sooner_than_ack_wait_could_bring_it_was_handed_back() -> None:
    """Only a ``nak`` brings a message back before ``ack_wait`` after it could first be delivered."""
    assert why(rec(), after=2.0) == "nak"
    assert why(rec(), after=ACK_WAIT - 1) == "nak"


def test_this_workers_own_hand_back_is_normal_whenever_it_comes() -> None:
    assert why(rec(), after=500.0, handed_ago=0.1) == "handed_back"


def test_the_record_naming_the_delivery_before_tells_a_retry_a_hand_back_and_a_lost_ack() -> None:
    retry = rec(attempts=1, delivery="7.1", started_at=T0, retry_at=T0 + timedelta(seconds=1))
    assert why(retry, after=300.0) == "recorded"
    refunded = rec(delivery="7.1", retry_at=T0)  # a shutdown's hand-back (transitions.handed_back)
    assert why(refunded, after=300.0) == "recorded"
    assert why(rec(AdStatus.COMPLETED, attempts=1, delivery="7.1"), after=31.0) == "final"
    assert why(rec(AdStatus.DEAD, attempts=5, delivery="7.1"), after=31.0) == "final"


def test_a_record_processing_is_the_handlers_to_judge() -> None:
    """Lost attempt or live holder (Redeliveries.holder_wait) or a later claim: no line of this kind."""
    assert why(rec(AdStatus.PROCESSING, attempts=1, delivery="7.1", started_at=T0)) == "running"
    assert why(rec(AdStatus.PROCESSING, attempts=1, delivery="7.3", started_at=T0)) == "running"


def test_a_lost_delivery_after_a_recorded_retry_counts_from_the_retry() -> None:
    """Delivery 1 failed (due again at +100 s), delivery 2 left no trace, this is delivery 3: lost only if it came
    ack_wait after the retry fell due, not after the store."""
    retry = rec(attempts=1, delivery="7.1", started_at=T0, retry_at=T0 + timedelta(seconds=100))
    assert why(retry, count=3, after=110.0) == "nak"
    assert why(retry, count=3, after=131.0) == "lost"


def test_another_messages_delivery_in_the_record_says_nothing_of_this_one() -> None:
    """A replay or a repair published the ad anew (seq 90): this message's earlier delivery is untraced."""
    assert why(rec(attempts=1, delivery="90.1", started_at=T0, retry_at=T0 + timedelta(seconds=200)),
               after=31.0) == "lost"


@given(after=st.floats(0, 10_000), count=st.integers(2, 1000), handed=st.none() | st.floats(0, 10_000))
def test_a_hand_back_is_never_called_lost(after: float, count: int, handed: float | None) -> None:
    """Whatever the times: this worker's hand-back, or anything sooner than ack_wait (less the clocks' slack)."""
    verdict = why(rec(), count=count, after=after, handed_ago=handed)
    if handed is not None:
        assert verdict == "handed_back"
    elif after < ACK_WAIT - 0.25:
        assert verdict == "nak"
    else:
        assert verdict == "lost"


def test_only_a_lost_delivery_is_a_warning_and_it_names_what_an_operator_needs(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="gamead_core.worker.runtime")
    for verdict in ("recorded", "handed_back", "nak", "running", "final", "lost"):
        say(Redelivery(verdict, 2, 31.5, 31.5, None), "a1", ACK_WAIT)  # type: ignore[arg-type]
    by_level = {r.levelno: r for r in caplog.records}
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].redelivery == "lost", [r.getMessage() for r in warnings]
    lost = warnings[0]
    assert (lost.ad_id, lost.deliveries, lost.stored_ago_s, lost.ack_wait_s) == ("a1", 2, 31.5, ACK_WAIT)
    assert "lost on its way" in lost.getMessage() and "queue.ack_wait (30s)" in lost.getMessage()
    assert by_level[logging.INFO].redelivery == "final"
    assert sorted(r.redelivery for r in caplog.records if r.levelno == logging.DEBUG) == ["handed_back", "nak",
                                                                                         "recorded"]


def test_a_nak_nats_server_announced_for_the_delivery_before_is_a_hand_back_however_late() -> None:
    """A busy worker handed back an ad that had waited past ack_wait (a backlog): not lost (left41b: 43 such WARNING
    lines in a 13,044-ad burn-down without the advisories); a nak of an older delivery says nothing of this one."""
    assert why(rec(), count=2, after=500.0) == "lost"
    assert why_redelivered(rec(), seq=7, count=2, stored_at=STORED, now=STORED + 500, ack_wait=ACK_WAIT,
                           naked=1).why == "nak"
    assert why_redelivered(rec(), seq=7, count=3, stored_at=STORED, now=STORED + 500, ack_wait=ACK_WAIT,
                           naked=1).why == "lost"


def test_nak_advisories_are_parsed_only_for_the_work_streams_and_remembered_within_a_bound() -> None:
    subject = "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.GAMEAD_ADS.gamead-p3"
    body = b'{"type":"io.nats.jetstream.advisory.v1.nak","stream":"GAMEAD_ADS","consumer":"gamead-p3",' \
           b'"consumer_seq":12,"stream_seq":7,"deliveries":1}'
    assert parse_nak(subject, body) == ("GAMEAD_ADS", 7, 1)
    kv = parse_nak(subject.replace("GAMEAD_ADS", "KV_gamead_ads"), body.replace(b"GAMEAD_ADS", b"KV_gamead_ads"))
    assert kv is None
    assert parse_nak(subject, body.replace(b'"stream":"GAMEAD_ADS"', b'"stream":"GAMEAD_ADS_1"')) is None
    assert parse_nak(subject, body.replace(b'"stream_seq":7', b'"stream_seq":"7"')) is None
    assert parse_nak(subject, b"not json") is None
    assert parse_nak(subject, body + b" " * MAX_BYTES) is None
    naks = NaksSeen(remembered=3)
    for seq in range(1, 6):
        naks.note("GAMEAD_ADS", seq, 1)
    naks.note("GAMEAD_ADS", 3, 2)  # the newest nak of a message counts
    assert [naks.naked("GAMEAD_ADS", s) for s in range(1, 6)] == [None, None, 2, 1, 1]


def _redelivery(seq: int, count: int, stored: float) -> Msg:
    reply = f"$JS.ACK.GAMEAD_ADS.gamead-p3.{count}.{seq}.{seq + 100}.{int(stored * 1e9)}.0"
    return Msg(None, subject="gamead.ads.p3", reply=reply, data=b"")  # type: ignore[arg-type]


def test_a_lost_verdicts_line_waits_for_a_nak_announced_just_after_the_redelivery(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """nats-server sends the advisory before it puts the message back, but on another queue: the line waits
    NAK_GRACE for it, so a hand-back whose advisory comes second is still no WARNING."""
    monkeypatch.setattr(redelivery, "NAK_GRACE", 0.05)
    caplog.set_level(logging.DEBUG, logger="gamead_core.worker.runtime")
    seen = Redeliveries(lambda: ACK_WAIT)
    now = time.time()

    async def run() -> None:
        assert seen.seen(_redelivery(7, 2, now - 100), rec(), "a7").why == "lost"
        assert seen.seen(_redelivery(8, 2, now - 100), rec(), "a8").why == "lost"
        seen.naks.note("GAMEAD_ADS", 7, 1)  # a7's hand-back announced after its redelivery
        await until(lambda: {"a7", "a8"} <= {r.ad_id for r in caplog.records if hasattr(r, "redelivery")},
                    what="both verdicts' lines, NAK_GRACE after their redeliveries")

    asyncio.run(run())
    lines = {(r.ad_id, r.levelname, r.redelivery) for r in caplog.records if hasattr(r, "redelivery")}
    assert lines == {("a7", "DEBUG", "nak"), ("a8", "WARNING", "lost")}, lines


def test_a_delivery_handed_back_before_this_worker_listened_is_not_called_lost(
        caplog: pytest.LogCaptureFixture) -> None:
    """chaos47 F3: a worker stopped by SIGTERM handed 4 buffered ads back (nak) while no other worker ran; the first
    one started 33 s later took them and said each was "lost on its way" (WARNING): it had not heard the naks, made
    before it started. Listening since after the message was stored, it cannot tell: INFO, not a loss."""
    caplog.set_level(logging.DEBUG, logger="gamead_core.worker.runtime")
    late = why_redelivered(rec(), seq=7, count=2, stored_at=STORED, now=STORED + 40.0, ack_wait=ACK_WAIT,
                           listening_since=STORED + 39.0)
    assert late.why == "unseen"
    heard_all = why_redelivered(rec(), seq=7, count=2, stored_at=STORED, now=STORED + 40.0, ack_wait=ACK_WAIT,
                                listening_since=STORED - 1.0)
    assert heard_all.why == "lost"  # listening since before its store: a nak would have been heard
    say(late, "a1", ACK_WAIT)
    [line] = [r for r in caplog.records if "a1" in r.getMessage()]
    assert line.levelno == logging.INFO and "lost on its way" in line.getMessage()
    assert "is not known here" in line.getMessage()
