"""The dashboard's layout pinned by SVG snapshots (``pytest --snapshot-update`` after a deliberate change).

Fed a fixed recording through :class:`RecordedSource`: every figure on screen, ages included, comes from
the payload, so the screens are the same on every run.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source import RecordedSource
from gamead_cli.tui.widgets import ConfirmScreen, DlqTable
from tests.tui.conftest import until


def dashboard(recorded: dict[str, Any]) -> DashboardApp:
    return DashboardApp(RecordedSource(recorded), refresh=3600)  # one refresh: nothing moves


async def loaded(pilot: Pilot[Any]) -> None:
    app = pilot.app
    await until(pilot, lambda: app.stats is not None and app.query_one(DlqTable).row_count > 0,  # type: ignore[attr-defined]
                what="the recording on screen")
    await pilot.pause()


def test_layout_at_120x40(snap_compare: Any, recorded: dict[str, Any]) -> None:
    assert snap_compare(dashboard(recorded), terminal_size=(120, 40), run_before=loaded)


def test_layout_at_80x24(snap_compare: Any, recorded: dict[str, Any]) -> None:
    assert snap_compare(dashboard(recorded), terminal_size=(80, 24), run_before=loaded)


def test_replay_confirmation_at_80x24(snap_compare: Any, recorded: dict[str, Any]) -> None:
    async def confirm(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        pilot.app.query_one(DlqTable).focus()
        await pilot.press("space", "down", "space", "r")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), what="confirmation")
        await pilot.pause()

    assert snap_compare(dashboard(recorded), terminal_size=(80, 24), run_before=confirm)
