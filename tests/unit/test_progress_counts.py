"""newcomer59: the progress bars of ``gamead submit`` (a 10,000-ad file) and of DLQ jobs wrote their counts without
thousands separators (``10000/10000 10000 ok``) beside a summary's ``10,000 ads``, though the README says every
count the CLI prints has them. Without the fix: 3 failed; with it: 3 passed."""

from __future__ import annotations

from rich.progress import Progress

from gamead_cli.commands.dlq_jobs import job_progress
from gamead_cli.submit.views import progress_bar, progress_info


def shown(bar: Progress, completed: int, total: int | None, **fields: str) -> str:
    """Every column of ``bar`` rendered for one task, as plain text."""
    task_id = bar.add_task("submitting", total=total, completed=completed, **fields)
    task = bar.tasks[task_id]
    return " ".join(str(getattr(column(task), "plain", "")) for column in bar.columns)


def test_submit_bar_counts_with_separators() -> None:
    info = progress_info({"accepted": 9_700, "unsure": 1_200, "unknown": 0}, {"invalid_json": 1_500})
    assert info == "9,700 ok, 1,500 rejected, 1,200 may still be queued"
    text = shown(progress_bar(), 9_700, 10_000, info=info)
    assert " 9,700/10,000 " in text, text
    assert "10000" not in text and "9700" not in text, text


def test_done_padded_to_the_total_so_the_bar_stays_put() -> None:
    assert "     7/10,000" in shown(progress_bar(), 7, 10_000, info="")


def test_job_bar_counts_with_separators_and_unknown_total() -> None:
    assert "12,345/20,000" in shown(job_progress(), 12_345, 20_000)
    assert "1,234/?" in shown(job_progress(), 1_234, None)
