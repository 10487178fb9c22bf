"""The dashboard's one-line texts drop whole fields as the terminal narrows, never half of one (regress41 F7): at
80 columns the header was cut after ``2.8 MiB stored 4.0s`` (its ``ago`` and the answer's time fell off, so the
storage figure's age read as a duration), and the job line before ``dead again 5``. Read off the screen at 80x24
over a recording."""

from __future__ import annotations

import asyncio
from typing import Any

from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.view_header import summary_text
from gamead_cli.tui.widgets_tables import DlqTable
from tests.tui.conftest import screen_text, settled, until

JOB = {"kind": "replay", "id": "01kbq3z8x4w5v6t7s8r9p0n1m2", "state": "succeeded", "phase": "done",
       "counts": {"matched": 5, "done": 5, "completed": 0, "dead again": 5}}


def shown(recorded: dict[str, Any], size: tuple[int, int], job: dict[str, Any] | None = None) -> list[str]:
    """The lines of the dashboard at ``size`` once it has read the recording (and shows ``job``)."""
    async def main() -> list[str]:
        app = DashboardApp(RecordedSource(recorded), refresh=3600)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.stats is not None and app.query_one(DlqTable).row_count > 0,
                        what="the first refresh")
            app.job = job
            await settled(pilot)
            return screen_text(app).splitlines()

    return asyncio.run(main())


def test_the_header_at_80_columns_drops_whole_fields(recorded: dict[str, Any]) -> None:
    """At 80 columns (78 inside the header's padding) the storage figure goes whole, with its age, then the busy
    slots, and the answer's time stays. Without the fix: ``… NATS v2.15.1 · 2.8 MiB`` (cut there), 1 of 1."""
    recorded["stats"]["nats"]["storage"]["sampledAt"] = "2026-11-24T22:42:09.989677Z"  # 4 s before the answer
    whole = summary_text(recorded["stats"], "http://recorded").plain
    assert "2.8 MiB stored (read 4.0s ago)" in whole  # the field a narrow header leaves out, whole
    header = shown(recorded, (80, 24))[0].strip()
    assert header == "gamead 1 api · 2 workers 1 stuck  NATS v2.15.1  at 22:42:13 UTC", header
    wide = shown(recorded, (200, 50))[0].strip()
    assert wide.endswith("(6/6 slots busy) 1 stuck  NATS gamead_embedded v2.15.1 · 2.8 MiB stored (read 4.0s ago)"
                         "  at 22:42:13 UTC"), wide


def test_the_job_line_at_80_columns_keeps_the_outcome(recorded: dict[str, Any]) -> None:
    """At 80x24 the job line drops the job's id (the audit panel has it) and keeps every count, the outcome
    ``dead again 5`` last. Without the fix it was cut after ``· done 5 ·``."""
    lines = shown(recorded, (80, 24), JOB)
    line = next(line.strip() for line in lines if line.strip().startswith("replay job"))
    assert line == "replay job: succeeded (done) · matched 5 · done 5 · completed 0 · dead again 5", line
    wide = next(line.strip() for line in shown(recorded, (200, 50), JOB) if "replay job" in line)
    assert wide.startswith(f"replay job {JOB['id']}: succeeded (done)"), wide  # room enough: the id shows


def test_a_percentile_note_shows_its_p99_whole(recorded: dict[str, Any]) -> None:
    """regress41b F1: at 200x50 the processing row's note read ``p50 ≤0.25ms · p99`` and nothing after: its column
    was 24 cells (1 of them padding), sized for ``p50 0.45ms · p99 12.34s`` before the estimates' ``≈``/``≤``
    marks, and the 25-cell ``p50 ≤0.25ms · p99 ≈0.62ms`` wrapped its last field onto a line the row does not show.
    Without the fix: no ``p99 ≈0.62ms`` on the screen, 1 of 1."""
    recorded["stats"]["latency"]["processingMs"] = {
        "p50": 0.1, "p95": 0.3, "p99": 0.62, "count": 30,
        "estimate": {"bucketMs": {"p50": [0, 0.25], "p95": [0.25, 0.5], "p99": [0.5, 1.0]}}}
    row = next(line for line in shown(recorded, (200, 50)) if "proc p95" in line)
    assert "p50 ≤0.25ms · p99 ≈0.62ms" in row, row


def test_the_metrics_title_keeps_both_windows_at_80_columns(recorded: dict[str, Any]) -> None:
    """regress41b F5: in an API's first minute (its rates over 7 s, its latency over the last minute) the metrics
    panel's title at 80x24 read ``throughput · last 7 s · latency ·…``: the latency's window cut off. Now it says
    both in fewer words. Without the fix: no ``latency 1 min`` on the screen (the title cut), 1 of 1."""
    recorded["stats"]["rates"]["windowSeconds"] = 7.0
    top = next(line for line in shown(recorded, (80, 24)) if "throughput" in line)
    assert "throughput 7 s · latency 1 min" in top and "…" not in top, top
    wide = next(line for line in shown(recorded, (200, 50)) if "throughput" in line)
    assert "throughput · last 7 s · latency · last minute" in wide, wide
