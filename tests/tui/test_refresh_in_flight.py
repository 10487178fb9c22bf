"""tui54: a refresh asked for while one is on its way (after a replay or purge, ``p`` to resume, ``:scale``) waits
for it and follows it, one request at a time: it cancelled the one in flight, whose thread cannot be cancelled (the
API is asked all the same, its answer dropped), and the cancelled one's end cleared the flag that keeps ticks from
starting a refresh while one runs. From then on each tick cancelled the refresh in flight: at load, or on a link
where an answer takes longer than a tick, no answer ever showed and a request piled on the API at every tick."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from textual.worker import WorkerState

from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source_recorded import RecordedSource
from tests.tui.conftest import until


class Held(RecordedSource):
    """A recording whose ``/v1/stats`` answers once ``gate`` is open (a slow API); counts the requests in flight."""

    def __init__(self, recorded: dict[str, Any]) -> None:
        super().__init__(recorded)
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.in_flight = self.most = self.asked = 0

    def stats(self, history: int) -> dict[str, Any]:
        with self.lock:
            self.asked += 1
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            self.gate.wait(60)
            return super().stats(history)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_a_refresh_asked_for_while_one_runs_follows_it_and_ticks_pile_nothing(recorded: dict[str, Any]) -> None:
    """The first refresh held, then a refresh asked for (``refresh_now``) and two ticks: one request in flight at a
    time, and once the API answers, one more refresh (the one asked for) and its answer shown. Without the fix:
    3 requests in flight at once (each tick had cancelled the one before), 3 asked."""
    source = Held(recorded)

    async def main() -> None:
        app = DashboardApp(source, refresh=3600)  # no tick but the test's

        def landed() -> bool:  # every refresh started is under way, every cancel asked for has been taken
            return not any(w.state == WorkerState.PENDING or (w.is_cancelled and w.state == WorkerState.RUNNING)
                           for w in app.workers)

        async with app.run_test(size=(120, 40)) as pilot:
            try:
                await until(pilot, lambda: source.asked == 1, what="the first refresh asked")
                app.refresh_now(dlq=True)  # as after a replay
                for _ in range(2):
                    await until(pilot, landed, what="the refreshes under way")
                    app.tick()  # the refresh timer's
                await until(pilot, landed, what="the refreshes under way")
                assert source.most == 1, f"{source.most} requests in flight at once"
            finally:
                source.gate.set()
            await until(pilot, lambda: app.stats is not None and source.asked == 2 and not app._busy,
                        what="the answer shown, then the refresh asked for")
            assert source.most == 1 and source.asked == 2

    asyncio.run(main())
