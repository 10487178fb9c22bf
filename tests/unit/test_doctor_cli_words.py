"""``gamead doctor`` printed the server's texts as they are, API paths and all: ``the `dead` record is created from
the entry (GET /ads/{id} then answers it)`` said to a CLI user (leftout60). Every finding's and note's text is now
printed with the gamead command that shows the same (``gamead ads get ID --api …``), as the CLI's error lines are
(:mod:`gamead_cli.api_words`); the report's wire form (``GET /v1/doctor``, ``-o json``) keeps the API's words for
API clients. As are a job's ``stopReason`` and ``waiting`` wherever the CLI prints a job."""

from __future__ import annotations

import io
import re

from rich.console import Console

from gamead_cli.commands.doctor import report_view
from gamead_cli.commands.dlq_views import job_view
from gamead_core.doctor.model import KINDS, NOTES, Finding, Note, Report
from gamead_core.jobs.model import Job, JobKind, JobState, Selection
from gamead_core.models import utcnow

AGAIN = " --api http://127.0.0.1:9"
API_WORDS = re.compile(r"/v1/|(?:GET|POST|DELETE) /(?!ads/batch)|(?<![\w/])/ads/(?!batch)")


def _printed(view: object) -> str:
    out = io.StringIO()
    Console(file=out, width=10_000, highlight=False).print(view)
    return " ".join(out.getvalue().split())


def test_every_finding_and_note_names_the_command_not_the_api_path() -> None:
    report = Report(checked_at="2026-12-07T10:00:00+00:00")
    report.findings = [Finding(kind=k, items=["01m8zzzzzzzzzzzzzzzzzzzzzz"], count=1,
                               details={"01m8zzzzzzzzzzzzzzzzzzzzzz": "GET /ads/01m8zzzzzzzzzzzzzzzzzzzzzz answers"})
                       for k in KINDS]
    report.notes = [Note(code=code, items=["x"], count=1) for code in NOTES]
    wire = report.wire(sample=5)
    assert sum(1 for f in wire["findings"] if "GET /ads/{id}" in f"{f['what']} {f['repair']} "
               f"{f['notRepairedBecause']}") >= 4, wire  # the API's words stay in its answer
    said = _printed(report_view(wire, api="http://127.0.0.1:9", again=AGAIN))
    assert not API_WORDS.search(said), API_WORDS.search(said)  # before: 5 kinds' texts and the detail
    assert "ads get ID" + AGAIN in said and "ads get 01m8zzzzzzzzzzzzzzzzzzzzzz" + AGAIN in said, said


def test_a_job_s_stop_reason_names_the_command() -> None:
    job = Job(id="01m87v538ce744cfgethvyb39n", kind=JobKind.REPLAY, state=JobState.FAILED,
              selection=Selection(mode="all"), started_by="op", created_at=utcnow(),
              stop_reason="the API could not tell: GET /ads/01m8zzzzzzzzzzzzzzzzzzzzzz tells",
              waiting="a repair runs: follow it at /v1/jobs/01jc")
    said = _printed(job_view(job.wire(), again=AGAIN))
    assert not API_WORDS.search(said), said
    assert "ads get 01m8zzzzzzzzzzzzzzzzzzzzzz" + AGAIN in said and "dlq jobs 01jc --follow" + AGAIN in said, said
