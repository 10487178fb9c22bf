"""load57: ``settled`` timed out at 80x24 at load 35-52 with "waiting for the app quiet (nothing queued or
pending) (last: False)": nothing said what was still pending. Now its failure names it (a worker, a message queued
and where, a refresh flag), the first found at the last look."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.widgets_tables import DlqTable
from tests.tui.conftest import settled, unquiet, until


def test_a_settle_that_times_out_names_what_was_still_pending(recorded: dict[str, Any]) -> None:
    """A thread worker kept running past the wait: the failure names it (before: "(last: False)")."""
    release = threading.Event()

    async def main() -> None:
        app = DashboardApp(RecordedSource(recorded), refresh=3600)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.query_one(DlqTable).row_count > 0, what="the recording on screen")
            await settled(pilot)
            assert unquiet(app) == ""
            app.run_worker(lambda: release.wait(30), name="held-open", thread=True)
            try:
                with pytest.raises(AssertionError, match=r"still pending: worker 'held-open' (pending|running)"):
                    await settled(pilot, timeout=0.5)
            finally:
                release.set()
            await settled(pilot)

    asyncio.run(main())
