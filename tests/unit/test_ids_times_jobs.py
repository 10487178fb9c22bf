"""Pure rules at the boundary and of operator jobs: ids, times, RE2 filters, job counts, leases, work lists."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from gamead_core.ad_ids import new_ad_id
from gamead_core.ids import AdId, JobId, is_ad_id, is_job_id, is_worker_id, new_job_id, normal_id
from gamead_core.intake import keyed_ad_id
from gamead_core.jobs.model import Job, JobKind, JobState, Mark, Selection
from gamead_core.jobs.policy import (
    lease_expired,
    lease_too_far,
    lease_window,
    pace_delay,
    resume_decision,
    runner_node,
    stuck_text,
    written_ttl,
    summary,
    tally,
)
from gamead_core.jobs.store import CHUNK_BYTES, CHUNK_ITEMS, WorkList, chunk_bounds
from gamead_core.models import DlqEntry
from gamead_core.queue.dlq import MAX_PATTERN, DlqFilter, ScanBudget, compile_pattern
from gamead_core.scaling.store import Override, StoredOverride, standing_text
from gamead_core.times import UtcDatetime, as_utc, check_window
from tests.support import submission

UTC = timezone.utc


# --- ids -------------------------------------------------------------------------------------------------

@given(st.text(min_size=1, max_size=300))
def test_every_id_gamead_issues_passes_the_rule(key: str) -> None:
    assert is_ad_id(new_ad_id()) and is_ad_id(keyed_ad_id("anonymous", key))
    assert is_job_id(new_job_id())


@pytest.mark.parametrize("bad", [
    "", "a" * 4000, "*", ">", ".", " ", "../stats", "gamead.dlq.*", "01M87V538CE744CFGETHVYB3IN",  # I: no ULID
    "01m87v538ce744cfgethvyb39", "01m87v538ce744cfgethvyb39nn", "81m87v538ce744cfgethvyb39n",  # > 128 bits
    "01m87v538ce744cfgethvyb3 n", "01m87v538ce744cfgethvyb3in", "01m87v538ce744cfgethvyb39n\n", None, 42,
])
def test_what_is_not_an_id_fails_the_rule(bad: object) -> None:
    assert not is_ad_id(bad) and not is_job_id(bad)
    with pytest.raises(ValidationError, match="not a valid id"):
        TypeAdapter(AdId).validate_python(bad if isinstance(bad, str) else str(bad))


@pytest.mark.parametrize("sent", ["01M87V538CE744CFGETHVYB39N", "01m87V538ce744CFGETHVYB39n"])
def test_an_id_in_capitals_in_a_body_or_query_is_the_same_id_read_as_lowercase(sent: str) -> None:
    """attack27 F9: a path took ``01M8…`` as the id it names, a body (``POST /v1/dlq/replay {"ids": […]}``) refused
    it 422; one validator now, which hands on the lowercase form (the only one in NATS keys and subjects)."""
    assert not is_ad_id(sent)  # the stored form is lowercase ...
    for kind in (AdId, JobId):  # ... and what a client sends is read as it
        assert TypeAdapter(kind).validate_python(sent) == "01m87v538ce744cfgethvyb39n"


def test_a_confusable_that_lowercases_to_an_id_is_not_that_id() -> None:
    """attack27b F6: ``str.lower`` maps U+212A KELVIN SIGN to ``k``, so ``…tf\u212ap3`` named the ad ``…tfkp3``
    in paths and bodies; only ASCII is lowered now, and the confusable is refused as an id."""
    kelvin = "01m8xmca2b32vmd7rye93tf\u212ap3"
    assert normal_id(kelvin) == kelvin and not is_ad_id(normal_id(kelvin))
    for kind in (AdId, JobId):
        with pytest.raises(ValidationError):
            TypeAdapter(kind).validate_python(kelvin)
    assert normal_id("01M8XMCA2B32VMD7RYE93TFKP3") == "01m8xmca2b32vmd7rye93tfkp3"


# --- times -----------------------------------------------------------------------------------------------

def test_a_time_without_an_offset_is_utc_and_one_with_an_offset_is_converted() -> None:
    naive = datetime(2024, 1, 1)
    assert as_utc(naive) == datetime(2024, 1, 1, tzinfo=UTC)
    assert as_utc(datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))) == datetime(2024, 1, 1, tzinfo=UTC)
    adapter = TypeAdapter(UtcDatetime)
    assert adapter.validate_python("2024-01-01T00:00:00") == datetime(2024, 1, 1, tzinfo=UTC)
    assert adapter.validate_python("2024-01-01T00:00:00Z").tzinfo == UTC


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2x", "99999-01-01"])
def test_a_time_out_of_range_or_unreadable_is_a_validation_error_never_another_exception(text: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(UtcDatetime).validate_python(text)


def _entry(**kw: object) -> DlqEntry:
    ad = submission()
    base = dict(ad_id="a", title="t", priority=3, attempts=5, error_class="TaskTimeout",
                error_message="analysis took longer", retryable=True, first_failure_at="2024-01-01T00:00:00",
                last_failure_at="2024-01-01T00:00:00", dead_at="2024-01-01T00:00:00",
                submitted_at="2024-01-01T00:00:00", ad=ad)
    return DlqEntry.model_validate({**base, **kw})


def test_an_entry_whose_times_have_no_offset_compares_with_every_filter() -> None:
    entry = _entry()
    assert entry.dead_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert DlqFilter(since=as_utc(datetime(2024, 1, 1))).matches(entry)
    assert not DlqFilter(until=datetime(2024, 1, 1, tzinfo=UTC)).matches(entry)


# --- RE2 filters -----------------------------------------------------------------------------------------

def test_a_pattern_that_backtracks_for_ever_in_python_is_linear_in_re2() -> None:
    pattern = compile_pattern("(.*)*X")
    assert pattern.search("analysis took longer than worker.task_timeout " * 2000) is None
    assert DlqFilter(message="(.*)*X").matches(_entry(error_message="a" * 10_000 + "X"))


@pytest.mark.parametrize("bad, why", [
    ("(", r"missing \)"), ("(?<=a)b", "invalid perl operator"), ("(a)\\1", "invalid escape"),
    ("x" * (MAX_PATTERN + 1), "limit"), ("a{1000}{1000}", "bad repetition"),
])
def test_a_pattern_re2_cannot_take_is_refused_with_its_reason(bad: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        DlqFilter(message=bad)


def test_a_filter_survives_its_trip_through_a_job_document() -> None:
    flt = DlqFilter(error_class="TaskTimeout", message="^time", priority=2,
                    since=datetime(2024, 1, 1, tzinfo=UTC), until=datetime(2025, 1, 1, tzinfo=UTC))
    assert DlqFilter.from_wire(flt.wire()) == flt


def test_a_scan_budget_stops_at_its_entries() -> None:
    budget = ScanBudget(entries=3)
    assert [budget.spend() for _ in range(3)] == [True, True, False] and budget.exhausted and budget.scanned == 3


# --- job counts ------------------------------------------------------------------------------------------

MARKS = [Mark.PENDING, Mark.ACTED, Mark.COMPLETED, Mark.DEAD_AGAIN, *Mark.SKIPPED]


@given(st.lists(st.sampled_from(MARKS), max_size=300).map("".join), st.sampled_from(list(JobKind)))
def test_the_counts_of_a_job_always_add_up(marks: str, kind: JobKind) -> None:
    counts, reasons = tally(kind, marks)
    assert counts["matched"] == len(marks) == counts["done"] + counts["remaining"]
    assert counts["done"] == counts[kind.acted] + counts["skipped"]
    assert counts["skipped"] == sum(reasons.values())
    if kind == JobKind.REPLAY:
        assert counts["replayed"] == counts["completed"] + counts["deadAgain"] + counts["stillRunning"]


def _job(**kw: object) -> Job:
    base = dict(id=new_job_id(), kind=JobKind.REPLAY, selection=Selection(mode="all"), started_by="alice",
                created_at=datetime(2026, 1, 1, tzinfo=UTC))
    return Job(**{**base, **kw})


def test_the_summary_says_what_every_figure_is() -> None:
    counts, _ = tally(JobKind.REPLAY, Mark.COMPLETED * 28)
    assert summary(_job(counts=counts)) == \
        "replayed 28 of 28 matched · completed 28 · dead again 0 · still running 0 · skipped 0"
    # a job that ended (cancelled, or its follow timed out) no longer follows its replayed ads: the reviewer's
    # cancelled replay said "still running 14" for ads dead 26 minutes earlier
    counts, _ = tally(JobKind.REPLAY, Mark.ACTED * 14 + Mark.PENDING * 6)
    assert summary(_job(counts=counts, state=JobState.CANCELLED)) == (
        "replayed 14 of 20 matched · completed 0 · dead again 0 · not finished when the job ended 14 · skipped 0"
        " · not done 6")
    counts, _ = tally(JobKind.PURGE, Mark.ACTED * 2 + Mark.GONE + Mark.PENDING)
    assert summary(_job(kind=JobKind.PURGE, counts=counts)) == "purged 2 of 4 matched · skipped 1 · not done 1"


def test_pacing_spaces_actions_at_the_rate_and_skips_cost_nothing() -> None:
    assert pace_delay(100.0, 0, 2.0, 100.0) == 0
    assert pace_delay(100.0, 3, 2.0, 100.5) == 1.0
    assert pace_delay(100.0, 3, None, 100.0) == 0
    assert pace_delay(100.0, 1, 2.0, 105.0) == 0  # behind schedule: no wait


def test_a_job_is_resumed_only_when_its_lease_expired_and_at_most_max_resumes_times() -> None:
    running = _job(state=JobState.RUNNING, lease_until=1000.0)
    assert not lease_expired(running, 999.0) and lease_expired(running, 1000.5)
    assert not lease_expired(_job(state=JobState.SUCCEEDED, lease_until=0.0), 1000.0)
    assert resume_decision(running, max_resumes=3) == JobState.RUNNING
    assert resume_decision(_job(state=JobState.RUNNING, resumes=3), max_resumes=3) == JobState.INTERRUPTED
    cancelled = _job(state=JobState.RUNNING, cancel_requested={"by": "bob", "at": "2026-01-01T00:00:00Z"})
    assert resume_decision(cancelled, max_resumes=3) == JobState.CANCELLED


def test_a_job_lease_that_lies_far_ahead_expires_on_the_readers_clock_and_is_named_stuck() -> None:
    """attack31b F2b: a runner that died with leaseUntil an hour ahead kept its job for the hour. A lease that stood
    unchanged for longer than jobs.lease (the reader's monotonic clock) is expired, whatever leaseUntil says; the
    doctor names a lease further ahead than jobs.lease, or a runner whose API node has no registry entry."""
    ahead = _job(state=JobState.RUNNING, lease_until=1000.0 + 3600, runner="host-1-abcdef")
    assert not lease_expired(ahead, 1000.0, unchanged_for=29.0, lease=30.0)
    assert lease_expired(ahead, 1000.0, unchanged_for=31.0, lease=30.0)
    assert not lease_expired(_job(state=JobState.SUCCEEDED, lease_until=0.0), 1000.0, unchanged_for=99, lease=1)
    assert lease_too_far(ahead, 1000.0, 30.0) and not lease_too_far(ahead, 1000.0 + 3600 - 31, 30.0)
    assert runner_node("my-host-4242-abcdef") == "api-my-host-4242" and runner_node("vm-deadnode-1") is None
    text = stuck_text(ahead, 1000.0, 30.0, None)  # a document without leaseTtl: what is left of it, 3600 s
    assert text is not None and "lasts 3600 s, more than 10 × jobs.lease (300 s)" in text
    near = _job(state=JobState.RUNNING, lease_until=1010.0, runner="host-1-abcdef")
    assert stuck_text(near, 1000.0, 30.0, {"api-host-1"}) is None  # a live runner within its lease
    gone = stuck_text(near, 1000.0, 30.0, {"api-other-2"})
    assert gone is not None and "api-host-1" in gone and "no live registry entry" in gone
    assert stuck_text(near, 1000.0, 30.0, None) is None  # the registry unread: not judged by it


# --- work lists ------------------------------------------------------------------------------------------

def test_a_work_list_is_chunked_by_count_and_by_bytes() -> None:
    small = [["01m87v538ce744cfgethvyb39n", i] for i in range(2 * CHUNK_ITEMS + 1)]
    assert chunk_bounds(small) == [(0, CHUNK_ITEMS), (CHUNK_ITEMS, 2 * CHUNK_ITEMS), (2 * CHUNK_ITEMS, 2 * CHUNK_ITEMS + 1)]
    big = [{"x": "y" * (CHUNK_BYTES // 3)} for _ in range(7)]
    bounds = chunk_bounds(big)
    assert len(bounds) == 4 and bounds[0] == (0, 2) and bounds[-1][1] == 7
    assert chunk_bounds([]) == [(0, 0)]
    work = WorkList.new(small)
    work.dirty.clear()
    work.set(CHUNK_ITEMS + 5, Mark.ACTED)
    assert work.dirty == {1} and work.first_pending() == 0 and work.mark(CHUNK_ITEMS + 5) == Mark.ACTED


def test_a_time_window_must_be_able_to_hold_something() -> None:
    early, late = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 2, tzinfo=timezone.utc)
    for since, until in ((early, late), (None, late), (early, None), (None, None)):
        check_window(since, until)
    for since, until in ((late, early), (early, early)):
        with pytest.raises(ValueError, match="must be before until"):
            check_window(since, until)


@pytest.mark.parametrize("wid, ok", [
    ("local-1", True), ("w1", True), ("ip-10-0-0-1.ec2.internal-4242-abcdef", True), ("a" * 128, True),
    ("a.b.>", False), ("w*", False), ("w 1", False), ("", False), ("-w", False), ("a" * 129, False),
    ("wörker", False), (None, False), (7, False),
])
def test_a_worker_id_is_never_a_subject_wildcard(wid: object, ok: bool) -> None:
    assert is_worker_id(wid) is ok


def test_what_stands_is_said_in_words() -> None:
    now = 1_000.0
    assert standing_text(StoredOverride(None, 3), now) == "no override"
    assert standing_text(StoredOverride(Override(4, now - 1, now - 60, "alice"), 5), now) == "no override"  # expired
    text = standing_text(StoredOverride(Override(4, now + 60, now, "alice"), 5), now)
    assert text.startswith("override 4 until ") and text.endswith(" (set by alice)")


@given(st.text(alphabet=".rcD", max_size=60), st.integers(0, 70), st.integers(0, 80))
def test_a_work_lists_find_goes_round_once_from_where_it_starts(marks: str, start: int, limit: int) -> None:
    """A running replay looks at its replayed ads a batch at a time, going round (ops13 finding 1): each
    batch is the next ``limit`` items marked ``r`` from ``start``, wrapping to the front, none twice."""
    from gamead_core.jobs.store import WorkList

    work = WorkList.new([[str(i), i] for i in range(len(marks))])
    for i, m in enumerate(marks):
        work.set(i, m)
    at = min(start, len(marks))
    expected = [i for i in [*range(at, len(marks)), *range(at)] if marks[i] == Mark.ACTED][:limit]
    assert work.find(Mark.ACTED, start, limit) == expected


def test_a_job_document_with_numbers_past_range_reads_clamped_and_still_answers() -> None:
    """attack31b F5's kind, in the jobs bucket: a job document edited by hand to `leaseUntil: -1e300` and a count of
    10**400 is read with the lease at 1970 and the count at 2**53, so `GET /v1/jobs` can answer it (orjson refuses
    an integer past 64 bits) and the doctor can say when its lease ended (before: OverflowError)."""
    import orjson

    from gamead_core.models import utc_iso

    doc = _job(state=JobState.RUNNING).wire()
    doc.update(leaseUntil=-1e300, followUntil=1e300, resumes=-3, counts={})
    text = orjson.dumps(doc).replace(b'"counts":{}', b'"counts":{"replayed":' + str(10**400).encode() + b"}")
    job = Job.model_validate_json(text)
    assert (job.lease_until, job.counts, job.resumes) == (0.0, {"replayed": 2**53}, 0)
    assert utc_iso(job.lease_until, "seconds") == "1970-01-01T00:00:00Z" and utc_iso(job.follow_until or 0.0)
    assert orjson.loads(orjson.dumps(job.wire()))["counts"] == {"replayed": 2**53}


def test_a_reader_with_a_shorter_jobs_lease_never_takes_a_live_runners_job() -> None:
    """review31 R4 (the job lease): a runner with jobs.lease 60 renews every 20 s; a reader with jobs.lease 15
    judged it silent after 15 s unchanged and took the live job (two runners). It now waits for what was left of
    the lease when it saw it (at most 10 of its own leases); a lease an hour ahead is still taken after 150 s, and
    a runner with a 60 s lease is not "too far ahead" for a doctor with 15."""
    seen_at = 1000.0
    live = _job(state=JobState.RUNNING, lease_until=seen_at + 60.0, runner="host-1-abcdef")
    window = lease_window(live.lease_until - seen_at, 15.0)
    assert window == 60.0
    for unchanged in (15.5, 20.0, 59.9):  # its renewal every 20 s comes within the window
        assert not lease_expired(live, seen_at + unchanged, unchanged_for=unchanged, lease=window)
    assert lease_window(3600.0, 15.0) == 150.0 and lease_window(5.0, 15.0) == 15.0
    assert not lease_too_far(live, seen_at, 15.0) and stuck_text(live, seen_at, 15.0, {"api-host-1"}) is None


def test_a_job_lease_carries_its_ttl_and_is_judged_stuck_by_the_leader_leases_rule() -> None:
    """fix32: a job lease stored no ttl, and the doctor's stuck check named a job whose runner's API node heartbeats
    stuck when its leaseUntil lay far ahead (its repair then took a live job over); the leader leases' rule is "a
    registered holder is never stuck". One rule now (lease_rule.stuck_why), the job's leaseTtl its written ttl: a
    runner's node registered is never stuck; unregistered or unknown, a lease renewed ahead of now (leaseUntil −
    leaseTtl) is a clock ahead, a leaseTtl over 10 × jobs.lease a hand edit; the silence window waits for leaseTtl."""
    now = 1000.0
    far = _job(state=JobState.RUNNING, lease_until=now + 3600, runner="host-1-abcdef")
    assert stuck_text(far, now, 30.0, {"api-host-1"}) is None  # before: "3600 s ahead …", and the repair took it
    assert stuck_text(far.model_copy(update={"lease_ttl": 30.0}), now, 30.0, {"api-host-1"}) is None
    clock = stuck_text(far.model_copy(update={"lease_ttl": 30.0}), now, 30.0, None)
    assert clock is not None and "renewed 3570 s ahead of now" in clock, clock
    edited = stuck_text(far.model_copy(update={"lease_ttl": 3600.0}), now, 30.0, {"api-other-2"})
    assert edited is not None and "lasts 3600 s, more than 10 × jobs.lease (300 s)" in edited, edited
    live = _job(state=JobState.RUNNING, lease_until=now + 60.0, lease_ttl=60.0, runner="host-1-abcdef")
    assert stuck_text(live, now, 15.0, None) is None and stuck_text(live, now, 15.0, {"api-host-1"}) is None
    gone = stuck_text(live, now, 15.0, {"api-other-2"})
    assert gone is not None and "(api-host-1) has no live registry entry" in gone
    # lease51: a registry bucket too young to prove the runner's node gone defers only that reason
    assert stuck_text(live, now, 15.0, {"api-other-2"}, gone_unproven=True) is None
    assert stuck_text(far.model_copy(update={"lease_ttl": 30.0}), now, 30.0, {"api-other-2"}, True) == clock
    # its written ttl, not what is left of it, is what a reader waits for: seen 1 s before its renewal, still 60 s
    assert written_ttl(live, now + 59.0) == 60.0 and lease_window(written_ttl(live, now + 59.0), 15.0) == 60.0
    assert written_ttl(live.model_copy(update={"lease_ttl": None}), now + 59.0) == 1.0  # an older gamead's document
    assert Job.model_validate(live.wire()).lease_ttl == 60.0 and live.wire()["leaseTtl"] == 60.0
