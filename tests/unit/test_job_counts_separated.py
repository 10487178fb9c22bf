"""attack46 F1: a job's counts are written as every count the CLI prints, ``5,000`` (regress44 F7's rule). Two
``gamead dlq replay --all`` at once over 5,000 dead ads said ``replayed 2840 of 5000 matched · … · skipped 2160``,
``skipped  2450 no longer in the DLQ …`` and ``DONE/MATCHED 5000/5000`` beside ``dlq list``'s ``5,000 matching``."""

from __future__ import annotations

from rich.console import Console

from gamead_cli.commands.dlq_jobs import _phase_text
from gamead_cli.commands.dlq_views import job_view, jobs_table

JOB = {"id": "01m93vwd6s5qr77jhtq3w7qnxc", "kind": "replay", "state": "succeeded", "phase": "done",
       "counts": {"matched": 5000, "done": 5000, "remaining": 0, "replayed": 2840, "skipped": 2160,
                  "completed": 1200, "deadAgain": 1640, "stillRunning": 0},
       "skippedReasons": {"no longer in the DLQ (replayed, purged or expired meanwhile)": 1821},
       "selection": {"mode": "all"}, "startedBy": "op", "createdAt": "2026-12-05T19:46:17Z", "rate": 1000.0}


def shown(renderable: object) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return " ".join(console.export_text().split())


def test_the_job_card_and_the_jobs_table_separate_thousands() -> None:
    card = shown(job_view(JOB))
    assert "replayed 2,840 of 5,000 matched · completed 1,200 · dead again 1,640 · skipped 2,160" in card
    assert "skipped no longer in the DLQ (replayed, purged or expired meanwhile) — 1,821" in card  # reason, count
    table = shown(jobs_table({"items": [JOB]}))
    assert "5,000/5,000" in table and "replayed 2,840 of 5,000 matched" in table


def test_the_follow_progress_separates_thousands() -> None:
    acting = {**JOB, "state": "running", "phase": "acting"}
    assert _phase_text(acting) == "replaying · replayed 2,840 · completed 1,200 · dead again 1,640 · skipped 2,160"
    following = {**JOB, "state": "running", "phase": "following", "counts": {**JOB["counts"], "stillRunning": 1001}}
    assert _phase_text(following) == "waiting for outcomes · completed 1,200 · dead again 1,640 · still running 1,001"


def test_the_dry_run_and_the_question_separate_thousands() -> None:
    """`gamead dlq purge --until 0s --dry-run` over 5,579 entries said `5579 entries would be purged`, and the
    question `Purge 5579 dead-lettered ad(s)?`."""
    from gamead_cli.commands.dlq_jobs import _how_many
    from gamead_cli.commands.dlq_views import would_view

    preview = {"matched": 5579, "dryRun": True, "complete": True, "notInDlq": 1200}
    assert shown(would_view(preview, "purged")).startswith("5,579 entries would be purged (1,200 of the ids are not")
    assert _how_many({**preview, "complete": False}) == "at least 5,579"


def test_an_import_cut_short_separates_thousands() -> None:
    """Two `gamead dlq import` of 5,579 lines at once, one stopped by the API's rate limit: `imported 0 of 5579 lines
    (skipped 5263) by 89 jobs (…); …; the 257 lines after line 5322 were not sent` (line numbers stay as written)."""
    from types import SimpleNamespace

    from gamead_cli.commands.dlq_transfer import _cut_short

    totals = {"lines": 5579, "imported": 1000, "skipped": 4263, "skippedReasons": {}, "jobs": ["a", "b", "c", "d"]}
    batch = [(line, {}) for line in range(2264, 2323)]
    text = _cut_short(totals, 2263, batch, None, SimpleNamespace(again={}))
    assert text.startswith("; imported 1,000 of 5,579 lines (skipped 4,263) by 4 jobs (a … d)"), text
    assert "the 3,316 lines from line 2264 on were not sent" in text, text


def test_one_reason_for_every_skipped_entry_is_said_without_its_count_again() -> None:
    """newcomer58: ``gamead dlq import dead.jsonl`` run twice said ``imported 0 of 5 lines · skipped 5: already in the
    DLQ, identical — 5``; the count stays where reasons share the skipped (``… — 1,821`` above)."""
    from gamead_cli.commands.dlq_views import skipped_words

    assert skipped_words({"already in the DLQ, identical": 5}, 5) == "already in the DLQ, identical"
    assert skipped_words({"already in the DLQ, identical": 5}) == "already in the DLQ, identical — 5"
    assert skipped_words({"a": 3, "b": 2}, 5) == "a — 3; b — 2"
    assert skipped_words({"a": 1821}, 2160) == "a — 1,821"
