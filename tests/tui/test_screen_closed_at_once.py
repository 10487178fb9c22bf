"""A screen the dashboard closes while it is still being mounted (the operator quits right after opening it, or
the app ends: fresh45c, ``test_a_pasted_command_opens_the_command_line_and_runs_on_enter`` failed in a loaded
fresh clone with ``NoMatches: No nodes match '#level-filter' on LevelScreen()`` from its ``on_mount``, the app
ended with that exception) ends quietly: a screen's focus and hidden parts are set where it is composed
(``AUTO_FOCUS``, ``display``), never by a query of children that a teardown may have removed."""

from __future__ import annotations

from typing import Any

import pytest

from gamead_cli.tui.logs import LogFollower
from gamead_cli.tui.screens import LevelScreen, LogScreen, TypedConfirmScreen
from gamead_cli.tui.source_recorded import RecordedSource
from tests.tui.test_command_mode import ADS
from tests.tui.test_typeahead import run


@pytest.mark.parametrize("make", [lambda tmp: LevelScreen(4),
                                  lambda tmp: TypedConfirmScreen("purge 3 entries?", 3),
                                  lambda tmp: LogScreen(LogFollower(tmp, worker="local-1"))],
                         ids=["level", "typed-count", "log"])
def test_a_screen_closed_as_it_opens_ends_the_app_quietly(recorded: dict[str, Any], make: Any, tmp_path: Any) -> None:
    """Figures: the app's exception when the screen is pushed and the app exits in the same turn. Without the fix
    ``NoMatches`` for each of them (from its ``on_mount``); with it, none."""
    source = RecordedSource({**recorded, "ads": ADS})

    async def scenario(app: Any, pilot: Any) -> None:
        app.push_screen(make(tmp_path))
        app.exit()

    app = run(source, scenario)
    assert app.return_code in (0, None)
