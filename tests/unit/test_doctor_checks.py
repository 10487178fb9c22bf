"""The doctor's pure parts: the rules (what one ad's record, messages and DLQ entries break), what it reads
whole, the reply-subject and time parsing of its listings, the report, and the repair job's counts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamead_core.doctor.checks import Rules, WorkMsg, classify, records_to_read, stranded_reading
from gamead_core.doctor.model import KIND_BY_CODE, KINDS, Finding, Report
from gamead_core.doctor.pullers import disagreeing, late_text, nobody_pulls
from gamead_core.doctor.read import _epoch, reply_fields
from gamead_core.jobs.model import Job, JobKind, Mark, Selection
from gamead_core.jobs.policy import summary, tally
from gamead_core.models import AdRecord, AdStatus, AdSubmission
from gamead_core.queue.depth import LevelDepth
from gamead_core.registry import NodeInfo

NOW = 1_800_000_000.0
RULES = Rules(max_attempts=3, overdue_after=60.0, ack_wait=30.0, task_timeout=60.0)
AD = AdSubmission(title="Sky Saga", description="An RPG", genre="RPG", call_to_action="Play", duration=30)


def record(status: AdStatus, **update: object) -> AdRecord:
    at = datetime.fromtimestamp(NOW - 10, timezone.utc)
    return AdRecord(id="01m87v538ce744cfgethvyb39n", status=status, priority=3, submitted_at=at, ad=AD).model_copy(
        update=update)


def msgs(n: int) -> list[WorkMsg]:
    return [WorkMsg(seq=10 + i, level=3, ad_id="01m87v538ce744cfgethvyb39n", published=NOW - 5) for i in range(n)]


@pytest.mark.parametrize(
    ("status", "messages", "entries", "codes"),
    [
        (AdStatus.QUEUED, 1, 0, []),
        (AdStatus.PROCESSING, 1, 0, []),
        (AdStatus.QUEUED, 0, 0, ["no_message"]),
        (AdStatus.PROCESSING, 0, 0, ["no_message"]),
        (AdStatus.QUEUED, 2, 0, ["duplicate_messages"]),
        (AdStatus.QUEUED, 1, 1, ["entry_of_live_ad"]),
        (AdStatus.COMPLETED, 0, 0, []),
        (AdStatus.COMPLETED, 1, 0, ["completed_with_message"]),
        (AdStatus.COMPLETED, 0, 1, ["entry_of_completed"]),
        (AdStatus.COMPLETED, 1, 1, ["completed_with_message", "entry_of_completed"]),
        (AdStatus.FAILED, 0, 0, []),
        (AdStatus.FAILED, 1, 0, ["failed_with_message"]),
        (AdStatus.FAILED, 0, 1, ["failed_with_entry"]),
        (AdStatus.DEAD, 0, 1, []),
        (AdStatus.DEAD, 0, 0, ["dead_without_entry"]),
        (AdStatus.DEAD, 0, 2, ["several_entries"]),
        (AdStatus.DEAD, 1, 1, ["dead_with_message"]),
        (AdStatus.DEAD, 1, 0, ["dead_without_entry", "dead_with_message"]),
    ],
)
def test_each_status_breaks_exactly_what_the_invariants_say(status: AdStatus, messages: int, entries: int,
                                                            codes: list[str]) -> None:
    assert classify(record(status), msgs(messages), entries, NOW, RULES) == codes


def test_an_ad_without_a_record_breaks_something_only_with_a_dlq_entry() -> None:
    assert classify(None, msgs(1), 0, NOW, RULES) == []  # the worker recreates the record from the message
    assert classify(None, [], 1, NOW, RULES) == ["entry_without_record"]


def test_a_spent_budget_is_reported_only_once_it_has_been_due_longer_than_overdue_after() -> None:
    def at(seconds_ago: float) -> datetime:
        return datetime.fromtimestamp(NOW - seconds_ago, timezone.utc)

    spent = record(AdStatus.QUEUED, attempts=3)
    assert classify(spent.model_copy(update={"retry_at": at(-5)}), msgs(1), 0, NOW, RULES) == []  # backoff running
    assert classify(spent.model_copy(update={"retry_at": at(30)}), msgs(1), 0, NOW, RULES) == []  # due, not overdue
    assert classify(spent.model_copy(update={"retry_at": at(61)}), msgs(1), 0, NOW, RULES) == ["budget_spent"]
    assert classify(record(AdStatus.QUEUED, attempts=2, retry_at=at(600)), msgs(1), 0, NOW, RULES) == []
    # the last attempt's worker died: processing for longer than task_timeout + ack_wait + overdue_after
    lost = record(AdStatus.PROCESSING, attempts=3, started_at=at(60 + 30 + 61))
    assert classify(lost, msgs(1), 0, NOW, RULES) == ["budget_spent"]
    assert classify(record(AdStatus.PROCESSING, attempts=3, started_at=at(100)), msgs(1), 0, NOW, RULES) == []


statuses = st.sampled_from(list(AdStatus))


@given(statuses, st.integers(0, 3), st.integers(0, 3), st.integers(0, 5))
def test_every_code_is_a_known_kind_and_a_healthy_ad_has_none(status: AdStatus, messages: int, entries: int,
                                                             attempts: int) -> None:
    rec = record(status, attempts=attempts)
    codes = classify(rec, msgs(messages), entries, NOW, RULES)
    assert all(code in KIND_BY_CODE for code in codes)
    healthy = {
        AdStatus.QUEUED: messages == 1 and entries == 0,
        AdStatus.PROCESSING: messages == 1 and entries == 0,
        AdStatus.COMPLETED: messages == 0 and entries == 0,
        AdStatus.FAILED: messages == 0 and entries == 0,
        AdStatus.DEAD: messages == 0 and entries == 1,
    }[status]
    assert (codes == []) == healthy or "budget_spent" in codes


def test_only_non_final_keys_and_ads_with_a_message_or_an_entry_are_read_whole() -> None:
    wanted = records_to_read(["q1", "d1"], {"c1", "c2", "c3"}, ["q1", "c1", "x"], ["d1", "c2", "y"])
    assert wanted == ["c1", "c2", "d1", "q1", "x", "y"]  # c3: final, no message, no entry: only listed


def test_stranded_needs_both_readings() -> None:
    assert stranded_reading(3, 2) == 2 and stranded_reading(1, 0) == 0 and stranded_reading(0, 4) == 0


def test_reply_subjects_and_times_of_a_listing_are_read_without_nats_py() -> None:
    v1 = "$JS.ACK.KV_gamead_ads.ord.1.42.7.1764480000123456789.9"
    v2 = "$JS.ACK.hub.ACCHASH.KV_gamead_ads.ord.1.42.7.1764480000123456789.9.tok"
    assert reply_fields(v1) == reply_fields(v2) == (42, 1764480000.123456789, 9)
    assert reply_fields(None) is None and reply_fields("x.y") is None and reply_fields("$JS.ACK.a.b.c.d.e.f.g") is None
    assert _epoch("2026-11-30T03:57:19.225513649Z") == pytest.approx(
        datetime(2026, 11, 30, 3, 57, 19, 225513, tzinfo=timezone.utc).timestamp())
    assert _epoch("2026-11-30T03:57:19Z") == datetime(2026, 11, 30, 3, 57, 19, tzinfo=timezone.utc).timestamp()
    assert _epoch("garbage") == 0.0 and _epoch(None) == 0.0


def test_a_report_is_ok_only_when_nothing_is_broken_and_everything_was_read() -> None:
    report = Report(checked_at="now", findings=[Finding(k) for k in KINDS])
    assert report.ok and report.wire(5)["findings"] == []
    report.partial.append("records: stopped at doctor.scan_time")
    assert not report.ok
    report.partial.clear()
    found = report.finding("no_message")
    assert found is not None
    found.items, found.count = [f"ad{i}" for i in range(30)], 31
    wire = report.wire(5)
    assert not wire["ok"] and wire["problems"] == 31
    (only,) = wire["findings"]
    assert only["sample"] == ["ad0", "ad1", "ad2", "ad3", "ad4"] and only["count"] == 31
    assert only["repair"] and only["notRepairedBecause"] is None and only["invariant"] == 1


def test_every_kind_either_says_what_the_repair_does_or_why_it_does_nothing() -> None:
    for kind in KINDS:
        assert (kind.repair is None) == (kind.why_not is not None) or kind.code == "entry_of_live_ad", kind
        assert 1 <= kind.invariant <= 4


def test_a_repair_job_counts_each_action_by_name_and_they_add_up() -> None:
    marks = "PPLWMMEEEKOXT" + Mark.HEALED + Mark.LEFT + Mark.PENDING
    counts, skipped = tally(JobKind.REPAIR, marks)
    assert counts["matched"] == 16 and counts["remaining"] == 1 and counts["repaired"] == 13
    assert counts["done"] == counts["repaired"] + counts["skipped"] == 15
    assert (counts["republished"], counts["deadLettered"], counts["entriesWritten"], counts["messagesRemoved"],
            counts["entriesRemoved"], counts["recordsCreated"], counts["objectsCreated"], counts["objectsDeleted"],
            counts["jobsTakenOver"]) == (2, 1, 1, 2, 3, 1, 1, 1, 1)
    assert sum(skipped.values()) == 2
    job = Job(id="01m87v538ce744cfgethvyb39n", kind=JobKind.REPAIR, selection=Selection(mode="doctor"),
              started_by="op", created_at=datetime.now(timezone.utc) - timedelta(seconds=1), counts=counts)
    line = summary(job)
    assert line.startswith("13 of 16 repair actions taken · re-published 2 · dead-lettered 1")
    assert "skipped 2" in line and "not done 1" in line


def _node(node_id: str, role: str, partitions: int | None, state: str = "ok") -> NodeInfo:
    at = datetime(2026, 12, 3, tzinfo=timezone.utc)
    return NodeInfo(id=node_id, role=role, host="h", pid=7, version="x", started_at=at, heartbeat_at=at,
                    state=state, partitions=partitions)


def test_who_pulls_the_queues_partitions_and_who_disagrees_with_them() -> None:
    """attack28b F3: a worker pulls the queue only with its setting (an older one, which does not say: taken to);
    a draining one pulls nothing; a node whose setting differs is named, with the fix."""
    assert nobody_pulls([], 3) == "no worker is running"
    assert nobody_pulls([_node("a", "api", 3), _node("w", "worker", 3, "draining")], 3) == "no worker is running"
    assert nobody_pulls([_node("w1", "worker", 1), _node("w2", "worker", 5)], 3) == (
        "every live worker (2) is configured for queue.partitions 1/5, the queue has 3")
    assert nobody_pulls([_node("w1", "worker", 1), _node("w2", "worker", 3)], 3) is None
    assert nobody_pulls([_node("old", "worker", None)], 3) is None
    nodes = [_node("a1", "api", 1), _node("a3", "api", 3), _node("old", "worker", None)]
    assert disagreeing(nodes, 3) == {"a1": "api on h (pid 7) is configured for queue.partitions 1, the queue has 3: "
                                           "restart it with queue.partitions=3"}


def test_only_ads_past_their_levels_promised_wait_make_a_stream_unpulled() -> None:
    """Ads just queued while the workers start are no finding; one past its level's horizon is (step 10 s:
    priority 1 promises 10 s, priority 3 20 s)."""
    young = [LevelDepth(1, 2, oldest_age=9.0), LevelDepth(3, 5, oldest_age=19.0), LevelDepth(5, 0)]
    assert late_text(young, 10.0) is None
    late = [LevelDepth(1, 2, oldest_age=35.0), LevelDepth(3, 5, oldest_age=19.0)]
    assert late_text(late, 10.0) == "7 ad(s) wait, the oldest 35 s (priority 1 promises 10 s)"


def test_lease_stuck_says_the_suspect_lease_of_a_live_worker_and_its_release_at_once() -> None:
    """attack54: a suspect lease held by a live worker that runs no suspect ad with it (lease54) was reported under a
    kind saying 'held by a node that is gone, renewed ahead of now, or with a TTL no node writes' and a repair
    'released … once it stood unchanged for its own TTL' (138 s), while the repair released it at once (~3 s)."""
    kind = KIND_BY_CODE["lease_stuck"]
    assert "runs no suspect ad with it" in kind.what, kind.what
    assert kind.repair is not None and "at once" in kind.repair, kind.repair
