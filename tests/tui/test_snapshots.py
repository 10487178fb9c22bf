"""The dashboard's layout pinned by SVG snapshots (``pytest --snapshot-update`` after a deliberate change).

Fed a fixed recording through :class:`RecordedSource`: every figure on screen, ages included, comes from
the payload, so the screens are the same on every run.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.screens import TypedConfirmScreen
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.widgets_help import DetailScreen, HelpScreen
from gamead_cli.tui.widgets_tables import DlqTable
from tests.tui.conftest import press, settled, until


def dashboard(recorded: dict[str, Any], **kw: Any) -> DashboardApp:
    return DashboardApp(RecordedSource(recorded), refresh=3600, **kw)  # one refresh: nothing moves


def steady_cursor(pilot: Pilot[Any]) -> None:
    """Stop every text input's cursor blinking (it toggles every 0.5 s: a loaded machine would catch either
    phase), so a snapshot with an input open is the same on every run."""
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False


async def loaded(pilot: Pilot[Any]) -> None:
    app = pilot.app
    await until(pilot, lambda: app.stats is not None and app.query_one(DlqTable).row_count > 0,  # type: ignore[attr-defined]
                what="the recording on screen")
    await settled(pilot)


def test_layout_at_120x40(snap_compare: Any, recorded: dict[str, Any]) -> None:
    assert snap_compare(dashboard(recorded), terminal_size=(120, 40), run_before=loaded)


def test_layout_at_80x24(snap_compare: Any, recorded: dict[str, Any]) -> None:
    assert snap_compare(dashboard(recorded), terminal_size=(80, 24), run_before=loaded)


def test_layout_at_60x20(snap_compare: Any, recorded: dict[str, Any]) -> None:
    """Metrics (< 80 columns) and the autoscaler line (< 22 rows) dropped; queue columns, DLQ rows, footer kept."""
    assert snap_compare(dashboard(recorded), terminal_size=(60, 20), run_before=loaded)


def test_details_opened_and_closed_at_60x20(snap_compare: Any, recorded: dict[str, Any]) -> None:
    """tab, enter, escape: the screen is as it was (it used to scroll and strand sparkline pieces)."""
    async def visit(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await press(pilot, "tab", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, DetailScreen), what="details")
        await press(pilot, "escape")
        await until(pilot, lambda: not isinstance(pilot.app.screen, DetailScreen), what="details closed")
        await settled(pilot)

    assert snap_compare(dashboard(recorded), terminal_size=(60, 20), run_before=visit)


def help_open(pilot: Pilot[Any]) -> Any:
    async def run() -> None:
        await loaded(pilot)
        await press(pilot, "question_mark")
        await until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), what="help")
        await settled(pilot)

    return run()


def test_help_at_80x24(snap_compare: Any, recorded: dict[str, Any]) -> None:
    assert snap_compare(dashboard(recorded), terminal_size=(80, 24), run_before=help_open)


def test_help_at_60x20(snap_compare: Any, recorded: dict[str, Any]) -> None:
    assert snap_compare(dashboard(recorded), terminal_size=(60, 20), run_before=help_open)


def test_readonly_at_80x24(snap_compare: Any, recorded: dict[str, Any]) -> None:
    assert snap_compare(dashboard(recorded, readonly=True), terminal_size=(80, 24), run_before=loaded)


def test_replay_confirmation_at_80x24(snap_compare: Any, recorded: dict[str, Any]) -> None:
    async def confirm(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        pilot.app.query_one(DlqTable).focus()
        await press(pilot, "space", "down", "space", "r")
        await until(pilot, lambda: isinstance(pilot.app.screen, TypedConfirmScreen), what="confirmation")
        steady_cursor(pilot)
        await settled(pilot)

    assert snap_compare(dashboard(recorded), terminal_size=(80, 24), run_before=confirm)


def test_level_drill_down_at_120x40(snap_compare: Any, recorded: dict[str, Any]) -> None:
    from gamead_cli.tui.screens import LevelScreen
    from tests.tui.test_command_mode import ADS

    async def drill(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await press(pilot, "colon", *"level 2", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, LevelScreen) and pilot.app.screen.loaded,
                    what="level 2's ads")
        await settled(pilot)

    assert snap_compare(dashboard({**recorded, "ads": ADS}), terminal_size=(120, 40), run_before=drill)


def test_command_line_at_80x24(snap_compare: Any, recorded: dict[str, Any]) -> None:
    async def typing(pilot: Pilot[Any]) -> None:
        from gamead_cli.tui.screens import CommandLine

        await loaded(pilot)
        line = pilot.app.query_one(CommandLine)
        line.cursor_blink = False
        await press(pilot, "colon", *"rep")
        await until(pilot, lambda: line._suggestion == "replay class=PermanentError", what="the completion")
        await settled(pilot)

    assert snap_compare(dashboard(recorded), terminal_size=(80, 24), run_before=typing)
