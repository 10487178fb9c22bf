"""The worker's pure rules: the analysis budget, what a dead worker's held ads were doing, when a retry is
due, running suspect ads alone, fault draws. No servers."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamead_core import names
from gamead_core.config import FaultSettings
from gamead_core.models import AdError, AdRecord, AdStatus
from gamead_core.registry import HeldAd, NodeInfo
from gamead_core.worker.budget import (
    budget_spent, death_verdict, delivery_id, due_since, ends_unrun, held_state, lost_attempt, lost_error, nak_window_open,
    parse_delivery, superseded, waiting_since,
)
from gamead_core.worker.faults import pick_fault
from gamead_core.worker.reaper import SILENT, deaths, reaper_lease_ttl
from gamead_core.worker.recovery_text import recovery_line
from gamead_core.worker.solo import SoloGate
from gamead_core.worker.transitions import completing, landed_here, started_record, unclaimed

from tests.support import submission

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
AD = submission()


def rec(status: AdStatus = AdStatus.QUEUED, **kw: object) -> AdRecord:
    return AdRecord(id="a1", status=status, priority=3, submitted_at=T0, ad=AD, **kw)


# --- deliveries and the budget -------------------------------------------------------------------------


def test_delivery_ids_order_later_deliveries_after_earlier_ones() -> None:
    assert delivery_id(17, 2) == "17.2"
    assert parse_delivery("17.2") < parse_delivery("17.3") < parse_delivery("18.1")  # a replay is later
    assert parse_delivery(None) == parse_delivery("garbage") == (0, 0)


def test_the_budget_is_spent_only_for_a_live_ad_at_its_limit() -> None:
    assert budget_spent(rec(attempts=5), 5) and not budget_spent(rec(attempts=4), 5)
    assert not budget_spent(rec(AdStatus.COMPLETED, attempts=9), 5)


def test_the_verdicts_that_settle_a_delivery_unrun_are_the_ones_read_again_at_the_leader() -> None:
    """attack40b F1: a replayed ad whose record a lagging replica still served ``dead`` was acked unrun and lost;
    each verdict that ends a delivery without an analysis is taken on the stream leader's copy only."""
    assert ends_unrun(rec(AdStatus.DEAD), "9.1", 5) and ends_unrun(rec(AdStatus.COMPLETED), "9.1", 5)
    assert ends_unrun(rec(delivery="10.1"), "9.1", 5)  # claimed by a later delivery
    assert ends_unrun(rec(attempts=5), "9.1", 5)  # budget spent
    assert not ends_unrun(rec(), "9.1", 5) and not ends_unrun(rec(delivery="8.3", attempts=2), "9.1", 5)


def test_an_attempt_under_an_older_delivery_that_never_ended_is_lost() -> None:
    running = rec(AdStatus.PROCESSING, delivery="9.1", attempts=1)
    assert lost_attempt(running, "9.2")  # redelivered: the first one's worker died or froze
    assert not lost_attempt(running, "9.1")
    assert not lost_attempt(rec(delivery="9.1"), "9.2")  # it ended: a retry was recorded
    assert superseded(running, "9.0") and not superseded(running, "9.2")


def test_a_late_completion_writes_nothing_over_a_later_delivery_running_the_ad() -> None:
    """attack31c F4: a worker frozen past ack_wait resumed and its completion under 9.1 overwrote the record of
    9.2, which was running the ad: the running owner's record now stands; a queued or earlier record is completed
    (the work is done), a final one never overwritten."""
    done = rec(AdStatus.COMPLETED, delivery="9.1", attempts=1)
    assert completing(rec(AdStatus.PROCESSING, delivery="9.2", attempts=2), done, "9.1") is None
    assert completing(rec(AdStatus.COMPLETED, delivery="9.2", attempts=2), done, "9.1") is None
    requeued = completing(rec(AdStatus.QUEUED, delivery="9.1", attempts=2), done, "9.1")
    assert requeued is not None and requeued.status == AdStatus.COMPLETED and requeued.attempts == 2
    assert completing(rec(AdStatus.PROCESSING, delivery="9.1", attempts=1), done, "9.1") is not None


def test_the_reaper_says_a_silent_worker_stopped_answering_not_died() -> None:
    """attack31c F4: an expired entry may be a frozen (SIGSTOP) or hung process: the reaper cannot know it died."""
    line = recovery_line("w1", 1, 1, True, 1, 0, {15.0: "its consumer's"}, gone=SILENT)
    assert line.startswith("worker w1 stopped answering (its registry entry expired: dead, frozen or hung) holding 1")
    assert "died" not in line
    assert recovery_line("w1", 0, 0, False, 0, 0, {}).startswith("worker w1 died announcing no held ad")


def test_lost_error_keeps_the_worker_lost_it_was_charged_with() -> None:
    charged = AdError(error_class="WorkerLost", message="worker w died during this ad's analysis", at=T0)
    assert lost_error(3, rec(error=charged)) is charged
    fresh = lost_error(3, rec(error=AdError(error_class="RetryableError", message="x", at=T0)))
    assert fresh.error_class == "WorkerLost" and "3 attempt" in fresh.message


# --- a dead worker's held ads ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "state"),
    [
        (rec(AdStatus.PROCESSING, delivery="5.1"), "running"),  # its analysis had started
        (rec(AdStatus.QUEUED, delivery="5.1", retry_at=T0), "settled"),  # it recorded a retry or a hand-back
        (rec(AdStatus.QUEUED), "waiting"),  # pulled, never started
        (rec(AdStatus.QUEUED, delivery="4.1"), "waiting"),  # an earlier delivery ended; this one never started
        (rec(AdStatus.PROCESSING, delivery="5.2"), "settled"),  # a later delivery owns it now
        (rec(AdStatus.COMPLETED, delivery="5.1"), "settled"),
        (rec(AdStatus.DEAD), "settled"),
    ],
)
def test_held_state(record: AdRecord, state: str) -> None:
    assert held_state(record, "5.1") == state


@pytest.mark.parametrize(
    ("record", "state"),
    [
        (rec(AdStatus.QUEUED), "started"),  # flagged in the heartbeat, record untouched: ran unmarked
        (rec(AdStatus.QUEUED, delivery="4.1"), "started"),  # an earlier delivery ended, this one ran unmarked
        (rec(AdStatus.PROCESSING, delivery="5.1"), "running"),  # its delayed processing mark was written
        (rec(AdStatus.QUEUED, delivery="5.1", retry_at=T0), "settled"),  # its outcome (a retry) was written
        (rec(AdStatus.QUEUED, delivery="6.1"), "settled"),  # a later message (a replay) owns it now
        (rec(AdStatus.PROCESSING, delivery="4.1"), "settled"),  # someone else's analysis
        (rec(AdStatus.COMPLETED), "settled"),
    ],
)
def test_held_state_of_a_delivery_flagged_started(record: AdRecord, state: str) -> None:
    """Issue 14.2: a fast-path delivery leaves no ``processing`` mark; its heartbeat flag says it may run."""
    assert held_state(record, "5.1", started=True) == state


def test_only_a_worker_that_ran_exactly_one_ad_charges_it_for_its_death() -> None:
    assert death_verdict(1)
    assert not death_verdict(0) and not death_verdict(2) and not death_verdict(16)


@given(ack_wait=st.floats(0.5, 600), elapsed=st.floats(0, 1000))
def test_naks_stop_before_jetstream_can_have_redelivered(ack_wait: float, elapsed: float) -> None:
    # The dead worker renewed its leases every ack_wait / 3, last at most that long before its last
    # heartbeat; JetStream redelivers ack_wait after the last renewal, at the earliest 2/3 ack_wait later.
    assert nak_window_open(1000.0 + elapsed, 1000.0, ack_wait) == (elapsed < ack_wait * 2 / 3)


def test_a_worker_that_renewed_less_often_than_a_third_of_its_consumers_ack_wait_closes_the_window_sooner() -> None:
    # consumer ack_wait 30 s, the worker's own queue.ack_wait 300 s: it renewed every 100 s, so its deliveries
    # may be redelivered 30 - 100 < 0 s after its last heartbeat: no nak is safe. Renewing every 10 s: 20 s.
    assert not nak_window_open(1000.0, 1000.0, 30.0, renew_every=100.0)
    assert nak_window_open(1019.0, 1000.0, 30.0, renew_every=10.0)
    assert not nak_window_open(1020.0, 1000.0, 30.0, renew_every=10.0)
    assert nak_window_open(1040.0, 1000.0, 300.0, renew_every=10.0)  # the consumer's 300 s, renewed every 10 s


def test_deaths_are_vanished_or_replaced_workers_whatever_they_announced() -> None:
    def node(pid: int, holding: int = 1, started: datetime = T0) -> NodeInfo:
        held = [HeldAd(ad_id=f"a{i}", delivery=f"{i}.1", ack_subject="x") for i in range(holding)]
        return NodeInfo(id="w", role="worker", host="h", pid=pid, version="1", started_at=started,
                        heartbeat_at=started, holding=held)

    assert deaths({"w": node(1)}, {}) == [node(1)]  # expired (or deleted: the caller checks)
    assert deaths({"w": node(1)}, {"w": node(2)}) == [node(1)]  # restarted under the same id
    assert deaths({"w": node(1)}, {"w": node(1)}) == []
    # announced nothing: still a death (its last deliveries, unannounced, come back at ack_wait: its recovery says so)
    assert deaths({"w": node(1, holding=0)}, {}) == [node(1, holding=0)]
    assert reaper_lease_ttl(2.0, 10.0) == 5.0 and reaper_lease_ttl(0.5, 10.0) == 1.5


def test_only_ack_subjects_of_the_work_streams_level_consumers_are_accepted() -> None:
    good = f"$JS.ACK.{names.ADS_STREAM}.gamead-p3.2.118.120.1764500000000000000.4"
    assert names.is_work_ack_subject(good)
    assert names.is_work_ack_subject(f"$JS.ACK.hub.ACCHASH.{names.ADS_STREAM}.gamead-p1.1.5.5.1764500000.0.tok")
    for bad in [
        "$JS.ACK.OTHER.gamead-p3.2.118.120.1764500000000000000.4",
        f"$JS.ACK.{names.ADS_STREAM}.gamead-dlq-mover.1.1.1.1.0",
        f"$JS.ACK.{names.ADS_STREAM}.gamead-p3.*.118.120.1.4",
        f"$JS.API.CONSUMER.DELETE.{names.ADS_STREAM}.gamead-p3",
        f"$JS.ACK.{names.ADS_STREAM}.gamead-p3.2 .118.120.1.4",
        "gamead.ads.p3",
        "",
    ]:
        assert not names.is_work_ack_subject(bad), bad


# --- when a delivered ad is due again (the aging input for redeliveries) -------------------------------


def test_a_retry_is_due_at_its_retry_at_and_not_before() -> None:
    due = T0 + timedelta(seconds=5)
    r = rec(AdStatus.QUEUED, retry_at=due, delivery="3.1")
    assert waiting_since(r, 0, T0.timestamp(), ack_wait=30, task_timeout=60) == due.timestamp()


def test_an_ad_in_a_workers_hands_is_not_waiting() -> None:
    kw = {"ack_wait": 30.0, "task_timeout": 60.0}
    assert waiting_since(rec(AdStatus.QUEUED), 0, T0.timestamp(), **kw) is None  # pulled, not started
    started = rec(AdStatus.PROCESSING, started_at=T0)
    assert waiting_since(started, 0, T0.timestamp() + 89, **kw) is None  # may still be running
    assert waiting_since(started, 0, T0.timestamp() + 91, **kw) == T0.timestamp() + 90  # lease lost
    assert waiting_since(rec(AdStatus.COMPLETED), 0, T0.timestamp(), **kw) is None



def test_an_ad_became_due_at_its_retry_else_its_last_replay_else_its_submit() -> None:
    """The queue wait's start (attack27 F3), the same moment the aging order counts from: a replay of an ad
    submitted hours ago is due from the replay; its retry after the replay from the retry's ``retryAt``."""
    replayed = T0 + timedelta(hours=3)
    retry = replayed + timedelta(seconds=4)
    assert due_since(rec()) == T0
    assert due_since(rec(replays=1, replayed_at=replayed)) == replayed
    assert due_since(rec(replays=1, replayed_at=replayed, retry_at=retry)) == retry
    r = rec(AdStatus.QUEUED, replays=1, replayed_at=replayed, retry_at=retry, delivery="3.1")
    assert waiting_since(r, 0, retry.timestamp(), ack_wait=30, task_timeout=60) == retry.timestamp()


# --- suspect ads run alone --------------------------------------------------------------------------------


def test_a_suspect_ad_waits_for_the_others_and_then_runs_alone() -> None:
    async def scenario() -> list[str]:
        gate, events = SoloGate(), []
        release_shared = asyncio.Event()

        async def shared(name: str) -> None:
            async with gate.shared():
                events.append(f"{name} in")
                await release_shared.wait()
                events.append(f"{name} out")

        async def solo() -> None:
            async with gate.solo():
                events.append(f"solo in (running {gate.running})")
                await asyncio.sleep(0)
                events.append("solo out")

        a = asyncio.create_task(shared("a"))
        await asyncio.sleep(0)
        s = asyncio.create_task(solo())
        await asyncio.sleep(0)
        assert gate.blocked  # the worker pulls nothing new now
        b = asyncio.create_task(shared("b"))  # pulled before: waits behind the solo one
        await asyncio.sleep(0.01)
        release_shared.set()
        await asyncio.gather(a, s, b)
        assert not gate.blocked and gate.running == 0
        return events

    assert asyncio.run(scenario()) == ["a in", "a out", "solo in (running 1)", "solo out", "b in", "b out"]


def test_a_cancelled_solo_wait_does_not_leave_the_gate_shut() -> None:
    async def scenario() -> bool:
        gate = SoloGate()
        hold = asyncio.Event()

        async def shared() -> None:
            async with gate.shared():
                await hold.wait()

        a = asyncio.create_task(shared())
        await asyncio.sleep(0)
        s = asyncio.create_task(gate.solo().__aenter__())
        await asyncio.sleep(0)
        s.cancel()
        await asyncio.gather(s, return_exceptions=True)
        hold.set()
        await a
        await asyncio.wait_for(gate.wait_unblocked(), 1)
        return gate.blocked or gate.running != 0

    assert asyncio.run(scenario()) is False


# --- fault draws ---------------------------------------------------------------------------------------------


def test_a_replay_is_a_new_draw() -> None:
    half = FaultSettings(rate=0.5)
    first = [pick_fault(half, "x", f"ad{i}", 1) is not None for i in range(400)]
    replayed = [pick_fault(half, "x", f"ad{i}", 1, generation=17) is not None for i in range(400)]
    assert first != replayed  # the same ads at attempt 1 draw again after a replay
    assert 150 < sum(replayed) < 250
    assert [pick_fault(half, "x", f"ad{i}", 1, generation=0) is not None for i in range(400)] == first


def test_faults_can_be_limited_to_the_first_attempts() -> None:
    flaky = FaultSettings(rate=1, attempts=2)
    assert [pick_fault(flaky, "x", "a", n) is not None for n in (1, 2, 3, 4)] == [True, True, False, False]


def test_a_write_of_ours_is_recognised_by_its_delivery_and_its_clock_reading_whatever_its_attempts() -> None:
    """``landed_here`` (a write that landed though its answer was lost): our completion, also the compare-and-set
    loop's variant with more attempts (a review found those uncounted), not another delivery's, not another
    clock reading's."""
    done = AdRecord(id="01kz0000000000000000000000", status=AdStatus.COMPLETED, priority=3, submitted_at=T0,
                    ad=AD, attempts=1, delivery=delivery_id(7, 1), completed_at=T0 + timedelta(seconds=2))
    assert landed_here(done, done)
    assert landed_here(done.model_copy(update={"attempts": 3}), done)  # finish()'s max(attempts) variant
    assert not landed_here(done.model_copy(update={"delivery": delivery_id(7, 2)}), done)
    assert not landed_here(done.model_copy(update={"completed_at": T0 + timedelta(seconds=3)}), done)
    retry = done.model_copy(update={"status": AdStatus.QUEUED, "completed_at": None,
                                    "retry_at": T0 + timedelta(seconds=5)})
    assert landed_here(retry, retry) and not landed_here(retry, done)
    assert not landed_here(retry.model_copy(update={"retry_at": T0 + timedelta(seconds=6)}), retry)


def test_a_claim_met_by_a_storage_failure_is_refunded_or_fenced_never_kept() -> None:
    """regress36 F4: delivery 47712.2's claim (``processing``, one attempt) landed after the NATS stall that made its
    worker hand it back "uncharged"; delivery .3 then kept it as a lost attempt (``attempts`` 2 for one analysis)."""
    before = rec(attempts=0, delivery="7.1", retry_at=T0)
    claim = started_record(before, "7.2", "wS")
    undone = unclaimed(claim, "7.2")  # the claim landed: refunded, due as before (its aging place kept)
    assert undone is not None and (undone.status, undone.attempts, undone.retry_at) == (AdStatus.QUEUED, 0, T0)
    assert undone.delivery == "7.2"  # still claimed by the handed-back delivery: no later read calls it running
    assert unclaimed(before, "7.2") == before  # not landed (yet): rewritten unchanged, so it can never land
    older = rec(AdStatus.PROCESSING, attempts=1, delivery="7.1")  # an older attempt's own charge is not ours
    assert unclaimed(older, "7.2") == older
    assert unclaimed(rec(AdStatus.PROCESSING, attempts=1, delivery="7.3"), "7.2") is None  # a later one's
    assert unclaimed(rec(AdStatus.COMPLETED, attempts=1, delivery="7.2"), "7.2") is None  # final
