"""Text typed by the operator or sent by the server is shown as is, never read as Textual/Rich markup
(task C5 item 2): a filter ``/[/`` once ended ``gamead top`` with a MarkupError traceback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console

from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.view_tables import details_view
from gamead_cli.tui.widgets import Banner
from gamead_cli.tui.widgets_tables import DlqTable, NodesTable
from gamead_core.errors import ApiUnreachable
from tests.tui.conftest import press, raised_toasts, until

KEYS = {"[": "left_square_bracket", "]": "right_square_bracket", "/": "slash", "=": "equals_sign"}


def keys(text: str) -> list[str]:
    return [KEYS.get(ch, ch) for ch in text]


class FailingSource(RecordedSource):
    failure: Exception | None = None

    def stats(self, history: int) -> dict[str, Any]:
        if self.failure is not None:
            raise self.failure
        return super().stats(history)


def run(source: RecordedSource, scenario: Callable[[DashboardApp, Any], Awaitable[None]]) -> None:
    async def main() -> None:
        app = DashboardApp(source, refresh=0.2)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.stats is not None and app.query_one(DlqTable).row_count > 0,
                        what="the first refresh")
            await scenario(app, pilot)
            assert app.is_running  # no MarkupError ended the app

    asyncio.run(main())


def test_a_filter_of_markup_characters_is_shown_as_typed(recorded: dict[str, Any]) -> None:
    async def scenario(app: DashboardApp, pilot: Any) -> None:
        nodes = app.query_one(NodesTable)
        panel = nodes.parent
        for typed in ("[/", "[link=x]y"):  # was: MarkupError traceback; then a link rendered as markup
            await press(pilot, "slash", *keys(typed))
            await until(pilot, lambda: panel._border_subtitle is not None
                        and panel._border_subtitle.plain == f"filter: {typed}", what=f"the filter {typed!r} shown")
            assert nodes.row_count == 0  # nothing matches: the filter ran
            await press(pilot, "escape")
            await until(pilot, lambda: nodes.row_count == 3, what="the filter cleared")

    run(RecordedSource(recorded), scenario)


def test_a_notification_and_the_banner_show_server_text_as_is(recorded: dict[str, Any]) -> None:
    source = FailingSource(recorded)

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        app.notify("DLQ entry [link=x]y [/ is gone", severity="warning")
        notes = await until(pilot, lambda: raised_toasts(app), what="the toast")
        assert "DLQ entry [link=x]y [/ is gone" in notes
        source.failure = ApiUnreachable("GET /v1/stats: [link=x]y [/ connection refused")
        banner = app.query_one(Banner)
        await until(pilot, lambda: "[link=x]y [/" in str(banner.content), what="the banner with the text as sent")

    run(source, scenario)


def test_details_show_a_key_from_the_server_as_is() -> None:
    console = Console(width=80, color_system=None, record=True)
    console.print(details_view({"[b]key[/b]": "[link=x]y", "[/": 1}))
    text = console.export_text()
    assert "[b]key[/b]" in text and "[link=x]y" in text and "[/" in text
