"""A job whose selection failed says so (attack34a F2): its stopReason ``could not select entries: <why>; retry``
and its outcome ``selection failed``, never "replayed 0 of 0 matched" (which says the selection ran and found
nothing). The figure: ``gamead dlq jobs 01m909jdx04gqnnb3qa3sb2hva`` showed ``outcome replayed 0 of 0 matched`` /
``stopped because error: TimeoutError: nats: timeout`` while 1,500 entries matched ``all``."""

from __future__ import annotations

from datetime import datetime, timezone

import nats.errors

from gamead_cli.commands.dlq_views import job_summary
from gamead_core.errors import QueueUnavailable, StorageFailed
from gamead_core.jobs.model import Job, JobKind, JobPhase, JobState, Selection
from gamead_core.jobs.policy import failure_reason, summary

UTC = timezone.utc


def _job(**kw: object) -> Job:
    base = dict(id="01m909jdx04gqnnb3qa3sb2hva", kind=JobKind.REPLAY, selection=Selection(mode="all", fence=1500),
                started_by="anonymous", created_at=datetime(2026, 12, 4, tzinfo=UTC))
    return Job(**{**base, **kw})


def test_an_error_while_selecting_is_said_as_a_failed_selection_with_what_to_do() -> None:
    assert failure_reason(JobPhase.SELECTING, QueueUnavailable("NATS did not answer in time")) == \
        "could not select entries: NATS did not answer in time; retry"
    assert failure_reason(JobPhase.SELECTING, nats.errors.TimeoutError()) == \
        "could not select entries: TimeoutError: nats: timeout; retry"
    # past the selection it is the error it was, as before
    assert failure_reason(JobPhase.ACTING, StorageFailed("the disk is full")) == "error: the disk is full"
    assert failure_reason(JobPhase.FOLLOWING, ValueError()) == "error: ValueError"


def test_a_job_without_a_work_list_never_says_0_of_0_matched() -> None:
    failed = _job(state=JobState.FAILED, phase=JobPhase.DONE,
                  stop_reason="could not select entries: NATS did not answer in time; retry")
    assert summary(failed) == "selection failed: nothing was done"
    assert job_summary(failed.wire()) == "selection failed: nothing was done"  # `gamead dlq jobs ID`'s outcome
    assert summary(_job(kind=JobKind.PURGE, state=JobState.CANCELLED)) == \
        "ended cancelled before its selection: nothing was done"
    assert summary(_job(state=JobState.RUNNING)) == "selecting entries (none acted on yet)"
    # a selection that ran and matched nothing still says so
    assert summary(_job(state=JobState.SUCCEEDED, counts={"matched": 0, "done": 0, "remaining": 0, "purged": 0,
                                                         "skipped": 0}, kind=JobKind.PURGE)) == \
        "purged 0 of 0 matched · skipped 0"


def test_gamead_dlq_jobs_lists_such_a_job_as_selection_failed_not_0_of_0() -> None:
    from rich.console import Console

    from gamead_cli.commands.dlq_views import jobs_table

    failed = _job(state=JobState.FAILED, phase=JobPhase.DONE,
                  stop_reason="could not select entries: NATS did not answer in time; retry").wire()
    console = Console(width=200, record=True, color_system=None)
    console.print(jobs_table({"items": [failed], "count": 1}))
    row = next(line for line in console.export_text().splitlines() if failed["id"] in line)
    assert "selection failed: nothing was done" in row and "0/0" not in row and " - " in row, row
