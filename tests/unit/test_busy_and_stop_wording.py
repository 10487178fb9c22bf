"""What the operator reads when a bulk command is cut short or a node is busy (newcomer35, README read verbatim):
a SIGTERM said "interrupted (Ctrl-C)" in the submit summary (F3), an import refused before its first job said
"imported 0 of 59 lines by jobs ;" (F4), and a limit of 1 read "1 operator jobs", "1 DLQ scans" (F5)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from gamead_cli.commands.dlq_transfer import _cut_short
from gamead_cli.submit.batches import stop_reason
from gamead_core.api.errors import ListBusy
from gamead_core.api.scan_gate import ScanGate
from gamead_core.config import GameadSettings
from gamead_core.jobs.busy import JobsBusy
from gamead_core.jobs.runner import JobService


def test_a_submit_stopped_by_sigterm_says_sigterm_not_ctrl_c() -> None:
    # figure: `gamead submit --count 2000 --rate 100`, SIGTERM after 8 s: "not sent 1670 (stopped: interrupted
    # (Ctrl-C); …" above "interrupted  yes (SIGTERM)"
    assert stop_reason([], False, 30.0, False, True, "SIGTERM") == "interrupted (SIGTERM)"
    assert stop_reason([], False, 30.0, False, True) == "interrupted (Ctrl-C)"


def test_an_import_refused_before_any_job_names_no_jobs() -> None:
    # figure: `gamead dlq import dead.jsonl` (59 lines) under jobs_busy: "imported 0 of 59 lines by jobs ; the 59 …"
    said = _cut_short({"skipped": 0, "jobs": [], "imported": 0, "lines": 59}, 0, [(1, {}), (59, {})], None, None)
    assert said.startswith("; imported 0 of 59 lines; the 59 lines from line 1 on were not sent"), said
    assert "by job" not in said


@pytest.mark.parametrize(("limit", "said"), [(1, "1 DLQ scan (dlq.scans)"), (2, "2 DLQ scans (dlq.scans)")])
def test_a_busy_dlq_scan_gate_counts_in_words(limit: int, said: str) -> None:
    # figure: dlq.scans 1 and 20 concurrent `GET /v1/dlq`: "already runs 1 DLQ scans (dlq.scans)"
    async def refused() -> str:
        gate, release = ScanGate(limit, "DLQ scan", "dlq.scans"), asyncio.Event()

        async def hold() -> None:
            async with gate.slot():
                await release.wait()

        tasks = [asyncio.create_task(hold()) for _ in range(2 * limit)]
        await asyncio.sleep(0.01)
        try:
            with pytest.raises(ListBusy) as caught:
                async with gate.slot():
                    pass
        finally:
            release.set()
            await asyncio.gather(*tasks)
        return caught.value.message

    assert f"already runs {said} with {limit} waiting" in asyncio.run(refused())


@pytest.mark.parametrize(("limit", "said"), [(1, "1 operator job (jobs"), (4, "4 operator jobs (jobs")])
def test_jobs_busy_counts_in_words(limit: int, said: str) -> None:
    # figure: jobs.max_running 1, a replay running, then `gamead dlq purge --all --yes`: "already runs 1 operator jobs"
    runner = object.__new__(JobService)
    runner.settings = GameadSettings(jobs={"max_running": limit})
    runner._runs, runner._starting = {str(i): SimpleNamespace() for i in range(limit)}, 0
    with pytest.raises(JobsBusy) as caught:
        runner.room()
    assert f"already runs {said}.max_running)" in caught.value.message
