"""Issue 10 item 8: the dashboard at the sizes people use, ``--readonly``, honest labels (recorded payload).

80×24 shows every panel; smaller terminals drop whole panels in ``DROP_ORDER`` and keep the footer; the help
box always shows its way out; nothing pretends to be data before the first answer. The screens themselves
are pinned by SVG snapshots in ``test_snapshots.py``; these tests say what a user would notice, in words.
"""

from __future__ import annotations

import asyncio
import io
import threading
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

from gamead_cli.tui import view
from gamead_cli.tui.app import DROP_ORDER, DashboardApp
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.screens import RecordScreen, TypedConfirmScreen
from gamead_cli.tui.widgets_help import DetailScreen, HelpScreen
from gamead_cli.tui.widgets_tables import DlqPanel, DlqTable, NodesPanel, NodesTable
from tests.tui.conftest import on_recording, press, screen_text, settled, until

ALL_PANELS = ("top-row", "metrics", "nodes", "dlq", "audit", "autoscaler")



async def footer(app: DashboardApp, pilot: Any) -> str:
    """The bottom line once the footer has drawn its keys (it draws after the first frame)."""
    def drawn() -> str:
        line = screen_text(app).splitlines()[-1]
        return line if "q quit" in line else ""

    return await until(pilot, drawn, what="the footer")


def shown(app: DashboardApp) -> set[str]:
    return {p for p in ALL_PANELS if app.query_one(f"#{p}").display}


def test_80x24_shows_every_panel_and_the_whole_help(recorded: dict[str, Any]) -> None:
    async def scenario(app: DashboardApp, pilot: Any) -> None:
        assert shown(app) == set(ALL_PANELS)
        await footer(app, pilot)
        text = screen_text(app)
        for figure in ("OLDEST", "DEPTH", "q quit", "? help", "DLQ 12 entries", "autoscaler 2 → 4",
                       "audit · last operator actions", "wallboard", "refused forbidden"):
            assert figure in text, figure
        await press(pilot, "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        await settled(pilot)
        text = screen_text(app)
        assert "press escape to close" in text and "quit" in text and "pause / resume" in text
        await press(pilot, "end")  # the rest scrolls into view: the commands and what the colours mean
        await settled(pilot)
        text = screen_text(app)
        assert ":quit" in text and "count from then" in text and "press escape to close" in text
        await press(pilot, "escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), what="the help to close")

    on_recording(recorded, (80, 24), scenario)


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["80x24", "200x50"])
def test_a_dialog_taller_than_the_terminal_scrolls_to_its_last_line(recorded: dict[str, Any],
                                                                   size: tuple[int, int]) -> None:
    """regress41 F1: the help (48 lines), a node's or entry's details and an ad's record with its analysis grew
    past the terminal's edge with nothing to scroll (``height: auto``): at 80x24 the help ended at ``:dlq``, its
    other commands and notes unreachable (at 200x50 its last 2 lines). Now each scrolls, its last line reachable
    with ``end`` and the way out still on screen (without the fix: the last line is never shown, 6 of 6 cases, and
    the 80x24 help test above fails too). The three dialogs open in turn on one dashboard per size, each closed
    before the next (suite49: one dashboard per dialog and size was 6 starts of ~0.7 CPU-s each)."""
    long = Text("\n".join(f"field {i}" for i in range(80)) + "\nTHE LAST LINE")
    dialogs = {"help": (HelpScreen, "count from then"),
               "details": (lambda: DetailScreen("node local-1", long), "THE LAST LINE"),
               "record": (lambda: RecordScreen("ad 01m92e1wdsx7ad66y4wgwj7wes", long), "THE LAST LINE")}

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        dashboard = app.screen
        for screen, (opened, last) in dialogs.items():
            app.push_screen(opened())
            await settled(pilot)
            await press(pilot, "end")
            await settled(pilot)
            text = screen_text(app)
            assert last in text, (screen, text)
            assert "escape to close" in text or "(escape: back)" in text, (screen, text)  # and the way out
            app.pop_screen()
            await until(pilot, lambda: app.screen is dashboard, what=f"the {screen} closed")
            await settled(pilot)

    on_recording(recorded, size, scenario)


def test_60x20_drops_whole_panels_and_keeps_the_queue_columns_dlq_rows_and_footer(recorded: dict[str, Any]) -> None:
    async def scenario(app: DashboardApp, pilot: Any) -> None:
        assert shown(app) == {"top-row", "nodes", "dlq"}  # metrics (< 80 cols) and autoscaler (< 22 rows) dropped
        await footer(app, pilot)
        text = screen_text(app)
        lines = text.splitlines()
        assert "OLDEST" in text and "DEPTH" in text and "47s" in text  # the queue keeps every column
        assert "01m87vjgr0jpf99az52ef3wdqx" in text  # a DLQ row
        assert lines[-1].lstrip().startswith("q quit  ? help")  # the footer, quit first
        await press(pilot, "tab", "enter")  # to the DLQ, open an entry, close it: nothing scrolls or stays
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="the entry's details")
        await press(pilot, "escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailScreen), what="the details to close")
        await settled(pilot)
        after = screen_text(app).splitlines()
        assert after[0] == lines[0] and after[1] == lines[1]  # the top did not scroll away
        assert all(len(line.rstrip()) <= 60 and not line.rstrip().endswith(("▁", "█", "▇")) or "│" in line
                   for line in after)  # no sparkline pieces stranded at the right edge
        await press(pilot, "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        await settled(pilot)
        assert "press escape to close" in screen_text(app)

    on_recording(recorded, (60, 20), scenario)


@pytest.mark.parametrize(("size", "dropped"), [
    ((120, 40), set()),
    ((79, 40), {"metrics"}),
    ((120, 23), {"audit"}),
    ((120, 21), {"audit", "autoscaler"}),
    ((120, 17), {"audit", "autoscaler", "top-row"}),
    ((120, 11), {"audit", "autoscaler", "top-row", "nodes"}),
    ((50, 10), {"metrics", "audit", "autoscaler", "top-row", "nodes"}),
], ids=["120x40", "79x40", "120x23", "120x21", "120x17", "120x11", "50x10"])
def test_panels_drop_in_the_stated_order(recorded: dict[str, Any], size: tuple[int, int], dropped: set[str]) -> None:
    async def scenario(app: DashboardApp, pilot: Any) -> None:
        assert set(ALL_PANELS) - shown(app) == dropped
        assert (await footer(app, pilot)).lstrip().startswith("q quit")  # the footer always

    on_recording(recorded, size, scenario)
    assert [d[0] for d in DROP_ORDER] == ["metrics", "audit", "autoscaler", "top-row", "nodes"]


def test_no_sparkline_is_a_full_bar_before_the_first_answer() -> None:
    """Nor a count: the nodes panel is titled ``nodes`` alone, not ``nodes · 0 workers`` (tui42 F5: nothing had been
    read; without the fix this fails on that title, with it it passes)."""

    class Silent(RecordedSource):
        """An API that has not answered yet: the first request hangs until the test ends."""

        def __init__(self) -> None:
            super().__init__({})
            self.asked = threading.Event()
            self.release = threading.Event()

        def stats(self, history: int) -> dict[str, Any]:
            self.asked.set()
            self.release.wait(30)
            raise TimeoutError("no answer yet")

    source = Silent()

    async def main() -> None:
        app = DashboardApp(source, refresh=3600)
        async with app.run_test(size=(80, 24)) as pilot:
            try:
                await until(pilot, source.asked.is_set, what="the first request")

                def waiting() -> str | None:
                    text = screen_text(app)
                    return text if "waiting for the first answer" in text else None

                text = await until(pilot, waiting, what="the waiting screen")
                assert not any(ch in text for ch in "▂▃▄▅▆▇█")  # flat baselines only: no made-up history
                title = str(app.query_one(NodesPanel).border_title)
                assert title == "nodes" and "0 workers" not in text, (title, text)  # before: "nodes · 0 workers"
            finally:
                source.release.set()

    asyncio.run(main())


def test_readonly_hides_the_actions_and_says_so(recorded: dict[str, Any]) -> None:
    async def scenario(app: DashboardApp, pilot: Any) -> None:
        bottom = await footer(app, pilot)
        assert "READ-ONLY" in screen_text(app).splitlines()[0]
        assert "replay" not in bottom and "purge" not in bottom
        app.query_one(DlqTable).focus()
        await press(pilot, "space", "r", "x")
        await settled(pilot)
        assert not isinstance(app.screen, TypedConfirmScreen) and not app.query_one(DlqTable).marked
        assert "mark" not in screen_text(app).splitlines()[-1]
        await press(pilot, "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        await settled(pilot)
        help_text = screen_text(app)
        assert "read-only" in help_text and "replay the marked" not in help_text

    on_recording(recorded, (80, 24), scenario, readonly=True)


def test_top_once_at_80_columns_keeps_whole_dlq_ids_and_labels_every_figure(recorded: dict[str, Any]) -> None:
    snap = view.Snapshot(stats=recorded["stats"], nodes=recorded["workers"], dlq=recorded["dlq"])
    console = Console(width=80, file=io.StringIO(), record=True, color_system=None)
    console.print(view.snapshot_view(snap, "http://recorded"))
    text = console.export_text()
    ids = [str(e["adId"]) for e in recorded["dlq"]["items"][:10]]
    assert len(set(ids)) == len(ids) > 1
    for entry_id in ids:
        assert entry_id in text, entry_id  # whole: cut to 20 characters, two rows looked the same
    assert "NOW" not in text  # a one-minute average is not "now"
    assert "last minute (ack pending: now)" in text
    assert "slots busy" in text and "ago" in text


def test_a_long_autoscaler_decision_ends_in_an_ellipsis_at_80_columns(recorded: dict[str, Any]) -> None:
    """regress42 F3: at 80×24 the autoscaler row showed `backlog 0, arriving 0.25 ads/s at 497.6 ads/s per` and
    stopped, cut unmarked mid-sentence (its one row took the first line of the wrapped decision). Now it ends in
    `…` at the edge (`gamead scale status` has it whole). Without the fix (widgets.py of d7ed5250) the row ends
    `per`; with it, `…`."""
    recorded["stats"]["autoscaler"]["reason"] = ("backlog 0 ads, arriving 0.25 ads/s at 497.6 ads/s per worker (last "
                                                 "measured 558s ago) needs 1 worker → hold 2 workers (min 2)")

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        await footer(app, pilot)
        row = next(line for line in screen_text(app).splitlines() if "autoscaler 2 → 4" in line)
        assert row.rstrip().endswith("…") and len(row.rstrip()) <= 80, row

    on_recording(recorded, (80, 24), scenario)


def test_rows_below_a_short_panel_are_counted_in_its_title(recorded: dict[str, Any]) -> None:
    """regress42: at 80x24 the nodes panel lists 2 of its 3 nodes (the third, say a stuck worker, below) with only a
    one-cell scrollbar saying so. Now its title ends ``· 1 more ↓`` (the DLQ's ``· 10 more ↓``), and the count goes
    once the cursor has scrolled the last row into view. Without the fix this fails (``nodes · 2 workers · 1
    stuck``), with it it passes."""
    async def scenario(app: DashboardApp, pilot: Any) -> None:
        panel = app.query_one(NodesPanel)
        title = await until(pilot, lambda: (t := str(panel.border_title)).endswith("· 1 more ↓") and t,
                            what="the nodes title to count the row below")
        assert title == "nodes · 2 workers · 1 stuck · 1 more ↓", title
        assert str(app.query_one(DlqPanel).border_title).endswith(" more ↓")
        table = app.query_one(NodesTable)
        table.focus()
        await press(pilot, "down", "down")
        await until(pilot, lambda: "more" not in str(panel.border_title), what="the count to go at the last row")

    on_recording(recorded, (80, 24), scenario)

    async def tall(app: DashboardApp, pilot: Any) -> None:
        assert "more" not in str(app.query_one(NodesPanel).border_title)

    on_recording(recorded, (120, 40), tall)
