"""A terminal's paste (bracketed: one ``events.Paste`` of the whole text, as ``tmux paste-buffer -p`` sends it) that no
input takes opens the command line or the filter when it starts with ``:`` or ``/``, with the rest of its first line
typed and nothing run, as typing it would (regress41b F7: a pasted ``:level 4`` did nothing, and the enter after it
opened the focused node's details). Any other such paste is ignored. Driven with :func:`tests.tui.conftest.burst`."""

from __future__ import annotations

from typing import Any

from textual import events

from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.commands import pasted
from gamead_cli.tui.screens import CommandLine, LevelScreen
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.widgets_tables import FilterBar, NodesTable
from tests.tui.conftest import all_handled, burst, until
from tests.tui.test_command_mode import ADS
from tests.tui.test_typeahead import run


def test_a_pasted_command_opens_the_command_line_and_runs_on_enter(recorded: dict[str, Any]) -> None:
    """A paste of ``:level 4`` with the nodes table focused opens the command line holding ``level 4``, runs nothing
    (its newline is not an enter: the second line is dropped), and the operator's enter opens level 4. Without the
    fix the paste did nothing: the command line stayed closed (1 of 1 failed); with it, passes."""
    source = RecordedSource({**recorded, "ads": ADS})

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        line = app.query_one(CommandLine)
        await burst(pilot, events.Paste(":level 4\nquit\n"))
        await until(pilot, lambda: line.has_class("-shown") and app.focused is line, what="the command line")
        assert line.value == "level 4" and not isinstance(app.screen, LevelScreen) and app.is_running
        await burst(pilot, "enter")
        screen = await until(pilot, lambda: isinstance(app.screen, LevelScreen) and app.screen, what="level 4")
        assert screen.level == 4

    run(source, scenario)


def test_a_pasted_filter_opens_the_filter_and_filters_as_typed(recorded: dict[str, Any]) -> None:
    """A paste of ``/wor`` opens the filter bar holding ``wor`` and the nodes are filtered by it at once, as when
    typed; enter keeps it. Without the fix the filter stayed closed and empty (1 of 1 failed)."""
    source = RecordedSource(recorded)

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        nodes, bar = app.query_one(NodesTable), app.query_one(FilterBar)
        await burst(pilot, events.Paste("/wor"))
        await until(pilot, lambda: bar.has_class("-shown") and nodes.filter_text == "wor", what="the filter wor")
        await burst(pilot, "enter")
        await until(pilot, lambda: not bar.has_class("-shown"), what="the filter bar closed")
        assert nodes.filter_text == "wor" and app.focused is nodes

    run(source, scenario)


def test_any_other_paste_with_no_input_focused_is_ignored(recorded: dict[str, Any]) -> None:
    """A paste that does not start with ``:`` or ``/`` (``q``, ``level 4``) changes nothing: no quit, nothing opened,
    the nodes table keeps the focus."""
    source = RecordedSource(recorded)

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        nodes = app.query_one(NodesTable)
        await burst(pilot, events.Paste("q"), events.Paste("level 4"), events.Paste(""))
        await until(pilot, lambda: not app.is_running or all_handled(app), what="every paste handled")
        assert app.is_running and app.focused is nodes and nodes.filter_text == ""
        assert not app.query_one(CommandLine).has_class("-shown") and not app.query_one(FilterBar).has_class("-shown")

    run(source, scenario)


def test_what_a_paste_opens() -> None:
    """The pure rule: by the first character of the first line; the rest of that line, never a later one."""
    assert pasted(":level 4\r\nquit") == ("command", "level 4")
    assert pasted("/!Flight") == ("filter", "!Flight")
    assert pasted(":") == ("command", "")
    assert pasted("q") is None and pasted("") is None and pasted("\n:dlq") is None and pasted(" :dlq") is None
