"""The dashboard's keys and failure handling, driven by Pilot over a recorded payload (no server needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.screens import TypedConfirmScreen
from gamead_cli.tui.widgets import Banner, SummaryBar
from gamead_cli.tui.widgets_help import DetailScreen, HelpScreen
from gamead_cli.tui.widgets_tables import DlqTable, FilterBar, NodesTable
from gamead_core.errors import ApiClientError, ApiUnreachable
from tests.tui.conftest import press, row_keys, settled, until


class CountingSource(RecordedSource):
    """A recording that counts its refreshes and can be told to fail like an unreachable API."""

    def __init__(self, recording: dict[str, Any]) -> None:
        super().__init__(recording)
        self.refreshes = 0
        self.failure: Exception | None = None

    def stats(self, history: int) -> dict[str, Any]:
        self.refreshes += 1
        if self.failure is not None:
            raise self.failure
        return super().stats(history)


def run(source: RecordedSource, scenario: Callable[[DashboardApp, Any], Awaitable[None]],
        size: tuple[int, int] = (120, 40), refresh: float = 1.0) -> None:
    async def main() -> None:
        app = DashboardApp(source, refresh=refresh)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.stats is not None and app.query_one(DlqTable).row_count > 0,
                        what="the first refresh")
            await scenario(app, pilot)

    asyncio.run(main())


def test_slash_filters_the_focused_table_and_escape_clears_it(recorded: dict[str, Any]) -> None:
    async def scenario(app: DashboardApp, pilot: Any) -> None:
        nodes = app.query_one(NodesTable)
        assert app.focused is nodes and nodes.row_count == 3
        await press(pilot, "slash", *"stuck")
        assert app.query_one(FilterBar).display
        await until(pilot, lambda: row_keys(nodes) == ["worker-a"], what="only the stuck worker")
        await press(pilot, "enter")  # keep the filter, back to the table
        assert app.focused is nodes and row_keys(nodes) == ["worker-a"]
        assert "filter: stuck" in str(app.query_one("#nodes").border_subtitle)
        await press(pilot, "slash", "escape")
        await until(pilot, lambda: nodes.row_count == 3, what="all rows back")

    run(RecordedSource(recorded), scenario)


def test_tab_moves_between_panels_and_enter_shows_details(recorded: dict[str, Any]) -> None:
    async def scenario(app: DashboardApp, pilot: Any) -> None:
        await press(pilot, "down", "enter")  # second node row
        screen = await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen,
                             what="node details")
        assert screen.title_text == "node worker-a"
        await press(pilot, "escape")  # the tab must come after the details closed and gave the table its focus back:
        await until(pilot, lambda: app.focused is app.query_one(NodesTable), what="the details closed")  # load 30
        await press(pilot, "tab")  # ... pressed at once, it came before and the nodes table kept the focus
        await until(pilot, lambda: isinstance(app.focused, DlqTable), what="the DLQ table focused")
        first = row_keys(app.focused)[0]
        await press(pilot, "enter")
        screen = await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen,
                             what="DLQ entry details")
        assert screen.title_text == f"dead letter {first}"
        await press(pilot, "escape")
        await until(pilot, lambda: isinstance(app.focused, DlqTable), what="the details closed")
        await press(pilot, "tab")  # wraps round to the queue panel, then the metrics
        await until(pilot, lambda: app.focused is not None and app.focused.id == "queue", what="the queue focused")
        await press(pilot, "tab")
        await until(pilot, lambda: app.focused is not None and app.focused.id == "metrics", what="the metrics focused")

    run(RecordedSource(recorded), scenario)


def test_marked_dlq_entries_are_replayed_after_confirmation(recorded: dict[str, Any]) -> None:
    source = RecordedSource(recorded)

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        table = app.query_one(DlqTable)
        table.focus()
        first, second, *_ = row_keys(table)
        await press(pilot, "space", "down", "space", "r")
        dialog = await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen) and app.screen,
                             what="confirmation")
        assert "Replay 2 dead-lettered ads" in dialog.question
        await press(pilot, "p", "enter")  # keys type into the count; a wrong count keeps the dialog open
        await settled(pilot)
        assert app.screen is dialog and not app.paused and source.calls == []
        assert "that is not 2" in str(dialog.query_one("#typed-hint").render())
        await press(pilot, "escape")  # declined: nothing happens
        await settled(pilot)
        assert source.calls == []
        await press(pilot, "r")
        await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen), what="confirmation")
        await press(pilot, "2", "enter")
        await until(pilot, lambda: source.calls == [("replay", [first, second])], what="the replay call")
        await until(pilot, lambda: first not in row_keys(table) and second not in row_keys(table),
                    what="replayed entries to leave the table")
        assert table.marked == set()

    run(source, scenario)


def test_purge_needs_confirmation_and_acts_on_the_current_entry(recorded: dict[str, Any]) -> None:
    source = RecordedSource(recorded)

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        table = app.query_one(DlqTable)
        table.focus()
        current = row_keys(table)[0]
        await press(pilot, "x")
        await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen), what="confirmation")
        await press(pilot, "escape")
        await settled(pilot)
        assert source.calls == []
        await press(pilot, "x")
        await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen), what="confirmation")
        await press(pilot, "1", "enter")
        await until(pilot, lambda: source.calls == [("purge", [current])], what="the purge call")

    run(source, scenario)


def polling(app: DashboardApp) -> bool:
    """A refresh is under way (its worker runs)."""
    return any(w.group == "poll" and not w.is_finished for w in app.workers)


def test_p_pauses_and_resumes_refreshing(recorded: dict[str, Any]) -> None:
    source = CountingSource(recorded)

    async def main() -> None:
        app = DashboardApp(source, refresh=0.2)
        ticks = 0
        tick = app.tick

        def counted_tick() -> None:  # the refresh timer's callback (bound in on_mount), counted
            nonlocal ticks
            ticks += 1
            tick()

        app.tick = counted_tick  # type: ignore[method-assign]
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.stats is not None, what="the first refresh")
            await press(pilot, "p")  # handled on the app's loop: at load 38 not yet as press() returned (suite49)
            await until(pilot, lambda: app.paused and "PAUSED" in str(app.query_one(SummaryBar).render()),
                        what="PAUSED in the summary bar")
            await until(pilot, lambda: not polling(app), what="a refresh under way to finish")
            paused_at, ticked = source.refreshes, ticks
            await until(pilot, lambda: ticks >= ticked + 3, what="three refresh periods")
            assert source.refreshes == paused_at  # the timer ticked, nothing was fetched
            await press(pilot, "p")
            await until(pilot, lambda: source.refreshes > paused_at, what="refreshes to resume")

    asyncio.run(main())


def test_question_mark_shows_help(recorded: dict[str, Any]) -> None:
    async def scenario(app: DashboardApp, pilot: Any) -> None:
        await press(pilot, "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        await press(pilot, "escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), what="help to close")

    run(RecordedSource(recorded), scenario)


def test_an_unreachable_api_shows_a_banner_keeps_the_data_and_recovers(recorded: dict[str, Any]) -> None:
    source = CountingSource(recorded)

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        banner = app.query_one(Banner)
        source.failure = ApiUnreachable("cannot reach the gamead API at http://recorded (connection refused)")
        await until(pilot, lambda: banner.display, what="the banner")
        assert "API unreachable" in str(banner.message)
        assert app.query_one(NodesTable).row_count == 3  # last good data still shown
        assert app.query_one(NodesTable).has_class("-stale") is False
        assert app.query_one("#nodes").has_class("-stale")
        source.failure = ApiClientError("not allowed [forbidden, HTTP 403]", status=403)
        await until(pilot, lambda: "not allowed" in str(banner.message), what="the auth banner")
        source.failure = None
        await until(pilot, lambda: not banner.display, what="recovery")
        assert not app.query_one("#nodes").has_class("-stale")

    run(source, scenario, refresh=0.2)


def test_unexpected_data_never_ends_the_app(recorded: dict[str, Any]) -> None:
    source = CountingSource(recorded)

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        source.data["stats"] = {"queue": {"levels": "garbage"}, "nodes": [1, 2], "rates": [], "history": 7}
        source.data["workers"] = [{"id": 5, "processingMs": None}]
        source.data["dlq"] = {"items": [None, {"id": "x"}]}
        await until(pilot, lambda: app.nodes and app.nodes[0].get("id") == 5, what="the odd payload")
        shown_at = source.refreshes
        await until(pilot, lambda: source.refreshes >= shown_at + 2 and not polling(app),
                    what="two more refreshes of the odd payload")
        assert app.is_running
        source.data["stats"] = recorded["stats"]
        source.data["workers"] = recorded["workers"]
        await until(pilot, lambda: app.error is None and app.query_one(NodesTable).row_count == 3,
                    what="normal data again")

    run(source, scenario, refresh=0.2)
