"""Command mode, palette, drill-down with breadcrumb, inverted filters, mark-all and typed confirmations, driven
by Pilot over a recording (no server; the live stack has its own tests in test_dashboard_live.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from textual.command import CommandPalette

from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.screens import CommandLine, LevelScreen, RecordScreen, TypedConfirmScreen, breadcrumb
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.widgets import SummaryBar
from gamead_cli.tui.widgets_help import HelpScreen
from gamead_cli.tui.widgets_tables import DlqTable, NodesTable
from tests.tui.conftest import handled, press, row_keys, screen_text, settled, until

#: ads of level 2 in the recording's time (its stats were generated at 22:42:13.9897Z)
ADS = [
    {"id": "01m87vaaaaaaaaaaaaaaaaaaa1", "status": "queued", "priority": 2, "attempts": 0,
     "submittedAt": "2026-11-24T22:41:13.989Z", "ad": {"title": "Newer waiting"}},
    {"id": "01m87vaaaaaaaaaaaaaaaaaaa2", "status": "queued", "priority": 2, "attempts": 1,
     "submittedAt": "2026-11-24T22:38:13.989Z", "ad": {"title": "Oldest waiting"}},
    {"id": "01m87vaaaaaaaaaaaaaaaaaaa3", "status": "processing", "priority": 2, "attempts": 2,
     "workerId": "worker-b", "submittedAt": "2026-11-24T22:40:13.989Z", "ad": {"title": "In flight"},
     "analysis": None},
]


def run(source: RecordedSource, scenario: Callable[[DashboardApp, Any], Awaitable[None]],
        size: tuple[int, int] = (120, 40), readonly: bool = False) -> None:
    async def main() -> None:
        app = DashboardApp(source, refresh=3600, readonly=readonly)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.stats is not None and app.query_one(DlqTable).row_count > 0,
                        what="the first refresh")
            await scenario(app, pilot)

    asyncio.run(main())


def test_colon_completes_and_enter_on_a_level_drills_down_with_a_breadcrumb(recorded: dict[str, Any]) -> None:
    source = RecordedSource({**recorded, "ads": ADS})

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        await press(pilot, "colon", *"lev")
        line = app.query_one(CommandLine)
        await until(pilot, lambda: line._suggestion == "level 1", what="the completion")
        await press(pilot, "tab", "backspace", "2", "enter")
        screen = await until(pilot, lambda: isinstance(app.screen, LevelScreen) and app.screen.loaded
                             and app.screen, what="level 2's ads")
        table = screen.query_one("#level-table")
        # oldest first, waiting and in flight: id, age (at the stats' time), attempts, worker
        assert row_keys(table) == [ADS[1]["id"], ADS[2]["id"], ADS[0]["id"]]
        assert [str(c) for c in table.get_row(ADS[1]["id"])][1:5] == ["pending", "4m00s", "1", "-"]
        assert [str(c) for c in table.get_row(ADS[2]["id"])][1:5] == ["ack pending", "2m00s", "2", "worker-b"]
        assert "dashboard › P2" in screen_text(app)
        await press(pilot, "slash", *"!waiting", "enter")  # `/!` inverts: not the two titled "… waiting"
        await until(pilot, lambda: row_keys(table) == [ADS[2]["id"]], what="only the ad in flight")
        await press(pilot, "enter")
        record = await until(pilot, lambda: isinstance(app.screen, RecordScreen) and "In flight" in screen_text(app)
                             and app.screen, what="the ad's record")  # pushed before it is drawn: wait for its text
        assert breadcrumb(app) == f"dashboard › P2 › ad {ADS[2]['id']}"
        assert "In flight" in screen_text(app) and "worker-b" in screen_text(app)
        await press(pilot, "escape")
        await until(pilot, lambda: app.screen is screen, what="back to the level")
        await press(pilot, "q")  # as escape, as on the record and log screens (regress45: q did nothing here)
        await until(pilot, lambda: not isinstance(app.screen, LevelScreen), what="back to the dashboard")
        assert record is not None and app.is_running

    run(source, scenario)


def test_a_level_with_no_ad_says_so_in_words(recorded: dict[str, Any]) -> None:
    """regress41: `:level 3` on an idle stack read "P3: 0 pending, 0 ack pending; the oldest 0, oldest first ·
    enter: the ad's record" over a table header alone; a list with nothing in it says so in words (README,
    *List verbs*). Without the fix: "the oldest 0"."""
    source = RecordedSource({**recorded, "ads": ADS})  # level 2's ads only

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        app.open_level(3)
        screen = await until(pilot, lambda: isinstance(app.screen, LevelScreen) and app.screen.loaded
                             and app.screen, what="level 3 read")
        text = await until(pilot, lambda: "no ad of P3 waits or is held now" in (t := screen_text(app)) and t,
                           what="level 3's words drawn")
        assert "the oldest 0" not in text, text
        assert screen.query_one("#level-table").row_count == 0

    run(source, scenario)


def test_an_api_nodes_details_show_its_analysis_counts_as_its_row_does(recorded: dict[str, Any]) -> None:
    """regress41: `enter` on the API node's row said `concurrency 0`, `in flight 0`, `completed ads 0`, `failed
    attempts 0`, `dead 0` beside the row's `-` (an API node analyses nothing; README: its IN-FL, COMPLETED and FAILED
    are `-`); a worker's keep their figures (without the fix: `completed ads  0` for the API node)."""
    import re

    from gamead_cli.tui.widgets_help import DetailScreen

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        shown = {}
        for row, node in ((0, "api-vm-21584"), (1, "worker-a")):
            table = app.query_one(NodesTable)
            table.focus()
            table.move_cursor(row=row)
            await press(pilot, "enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), what=f"the details of {node}")
            shown[node] = await until(pilot, lambda: "completed ads" in (t := screen_text(app)) and t,
                                      what=f"the details of {node} drawn")
            await press(pilot, "escape")
            await until(pilot, lambda: not isinstance(app.screen, DetailScreen), what="the details to close")
        for word in ("concurrency", "in flight", "completed ads", "failed attempts", "dead"):
            assert re.search(rf"{word}\s+-\s", shown["api-vm-21584"]), (word, shown["api-vm-21584"])
        assert re.search(r"completed ads\s+533\s", shown["worker-a"]) and re.search(r"concurrency\s+4\s",
                                                                                     shown["worker-a"])

    run(RecordedSource(recorded), scenario)


def test_enter_on_the_queue_panel_drills_into_the_chosen_level(recorded: dict[str, Any]) -> None:
    source = RecordedSource({**recorded, "ads": ADS})

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        app.query_one("#queue").focus()
        await press(pilot, "down", "enter")  # P1 → P2
        await until(pilot, lambda: isinstance(app.screen, LevelScreen) and app.screen.level == 2,
                    what="level 2 drilled into")

    run(source, scenario)


def test_the_palette_runs_the_same_commands(recorded: dict[str, Any]) -> None:
    source = RecordedSource(recorded)

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        await press(pilot, "ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await press(pilot, *"scale")
        await until(pilot, lambda: ":scale 4 for 10m" in screen_text(app), what="the scale command offered")
        await press(pilot, *["backspace"] * 5, *"doctor")
        # the list searched again for "doctor" (Textual gathers the hits in a worker, restarted at each key)
        await until(pilot, lambda: ":doctor" in (text := screen_text(app)) and ":scale 4 for 10m" not in text,
                    what="the doctor command offered alone")
        await press(pilot, "enter")
        await until(pilot, lambda: app.doctor is not None, what="the doctor's verdict")
        assert source.calls == [("doctor", None)]
        await until(pilot, lambda: "doctor ok at" in str(app.query_one(SummaryBar).render()),
                    what="the verdict in the header")

    run(source, scenario)


def test_colon_replay_by_class_asks_for_the_count_and_runs_one_job(recorded: dict[str, Any]) -> None:
    source = RecordedSource(recorded)
    timeouts = [i["adId"] for i in recorded["dlq"]["items"] if i["errorClass"] == "TimeoutError"]

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        await press(pilot, "colon", *"replay class=TimeoutError", "enter")
        dialog = await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen) and app.screen,
                             what="the typed confirmation")
        assert dialog.count == len(timeouts) == 3
        assert "Replay 3 dead-lettered ads of class TimeoutError" in dialog.question
        await press(pilot, "3", "enter")
        await until(pilot, lambda: source.calls == [("replay", {"errorClass": "TimeoutError"})],
                    what="one replay job by filter")
        await until(pilot, lambda: not set(timeouts) & set(row_keys(app.query_one(DlqTable))),
                    what="the replayed entries to leave the DLQ")

    run(source, scenario)


def test_ctrl_a_marks_what_the_filter_shows_and_x_purges_them_after_typing_the_count(
        recorded: dict[str, Any]) -> None:
    source = RecordedSource(recorded)
    values = [i["adId"] for i in recorded["dlq"]["items"] if i["errorClass"] == "ValueError"]

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        table = app.query_one(DlqTable)
        table.focus()
        await press(pilot, "slash", *"ValueError", "enter", "ctrl+a")
        await until(pilot, lambda: table.marked, what="the filtered entries marked")
        assert table.marked == set(values)
        await press(pilot, "x")
        dialog = await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen) and app.screen,
                             what="the typed confirmation")
        assert dialog.count == 3
        await press(pilot, "2", "enter")  # the wrong count: nothing happens
        await handled(pilot)
        assert app.screen is dialog and source.calls == []
        await press(pilot, "3", "enter")
        await until(pilot, lambda: source.calls == [("purge", values)], what="one purge of the marked set")

    run(source, scenario)


def test_scale_for_a_while(recorded: dict[str, Any]) -> None:
    source = RecordedSource(recorded)

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        await press(pilot, "colon", *"scale 4 for 10m", "enter")
        await until(pilot, lambda: source.calls == [("scale", (4, 600))], what="the override")

    run(source, scenario)


def test_read_only_hides_every_action_the_command_line_and_palette_offer(recorded: dict[str, Any]) -> None:
    source = RecordedSource(recorded)

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        table = app.query_one(DlqTable)
        table.focus()
        await press(pilot, "ctrl+a")
        await handled(pilot)
        assert table.marked == set()
        for line in ("scale 4 for 10m", "replay class=TimeoutError", "purge class=TimeoutError"):
            app.run_command_line(line)  # what enter on the command line does (typing: the tests above)
            await settled(pilot)
            assert not isinstance(app.screen, TypedConfirmScreen)
        assert source.calls == []
        await press(pilot, "colon", *"sc")
        await settled(pilot)
        assert app.query_one(CommandLine)._suggestion == ""  # scale is not offered
        await press(pilot, "escape", "ctrl+p", *"scale")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await settled(pilot)
        assert ":scale" not in screen_text(app)  # the palette offers no action either
        await press(pilot, "escape")
        await until(pilot, lambda: not isinstance(app.screen, CommandPalette), what="the palette closed")  # or ? is
        await press(pilot, "question_mark")  # typed into its search
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        shown = await until(pilot, lambda: ":doctor" in (t := screen_text(app)) and t, what="the help drawn")
        assert ":scale" not in shown and ":replay" not in shown

    run(source, scenario, readonly=True)


def test_help_lists_every_key_and_command(recorded: dict[str, Any]) -> None:
    async def scenario(app: DashboardApp, pilot: Any) -> None:
        await press(pilot, "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        from gamead_cli.tui.commands import COMMANDS
        from gamead_cli.tui.widgets_help import help_text

        text = help_text(replay=True).plain
        for binding in app.BINDINGS:
            key = getattr(binding, "key_display", None) or binding.key  # type: ignore[union-attr]
            assert f"  {key}" in text, key
        for spec in COMMANDS:
            assert f":{spec.usage}" in text
        assert max(len(line) for line in text.splitlines()) <= 60
        assert app.query_one(NodesTable) is not None

    run(RecordedSource(recorded), scenario)
