"""fix33a: a job whose action waits (a repair releasing a stuck lease once it stood unchanged for its TTL) says what
it waits for and until when — in the progress of ``--follow`` and in ``gamead dlq jobs JOB`` — not a silent wait."""

from __future__ import annotations

from rich.console import Console

from gamead_cli.commands.dlq_jobs import _phase_text
from gamead_cli.commands.dlq_views import job_view

WAITING = ("the reaper lease held by worker-deadnode-999: released at 02:45:10 UTC if it is still unchanged "
           "then — 50 s unchanged (its TTL, at most 10 of this node's) proves no live holder renews it; a renewal "
           "meanwhile leaves it (healed)")
JOB = {"id": "01m8n9x54xpmz6r2js5aqya767", "kind": "repair", "state": "running", "phase": "acting",
       "counts": {"matched": 1, "done": 0}, "waiting": WAITING, "selection": {"mode": "doctor"}, "startedBy": "op",
       "createdAt": "2026-12-04T02:44:20Z"}


def test_the_progress_and_the_job_view_say_what_a_repair_waits_for() -> None:
    assert _phase_text(JOB) == f"repairing · waiting: {WAITING}"
    assert _phase_text({**JOB, "waiting": None}).startswith("repairing · repaired 0")
    console = Console(width=400, record=True)
    console.print(job_view(JOB))
    assert f"waiting {WAITING}" in " ".join(console.export_text().split())


def test_the_job_view_names_the_window_its_since_stood_for() -> None:
    """newcomer33 F3: `dlq purge --since 1h --yes` (no dry run, no prompt) and `dlq jobs JOB` never said the absolute
    window the age was resolved to; the job document has it."""
    job = {**JOB, "kind": "purge", "state": "succeeded", "waiting": None,
           "selection": {"mode": "filter", "filter": {"since": "2026-12-04T02:52:07Z", "until": None}}}
    console = Console(width=400, record=True)
    console.print(job_view(job))
    assert "window dead at or after 2026-12-04 02:52:07 UTC" in " ".join(console.export_text().split())
