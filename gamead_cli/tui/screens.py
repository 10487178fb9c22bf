"""The dashboard's command line (``:``), its command palette provider (``ctrl+p``), the drill-down screens (a
level's ads, an ad's record, the audit trail) with their breadcrumb, and the typed-count confirmation of a bulk
action. Parsing and completion are in :mod:`gamead_cli.tui.commands` (pure); I/O stays in the app's workers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Log, Static

from gamead_cli.tui import commands, view_queue
from gamead_cli.tui.logs import MAX_LINES, LogFollower, LogsUnavailable
from gamead_cli.tui.widgets_tables import FilterTable

if TYPE_CHECKING:
    from gamead_cli.tui.app import DashboardApp


def breadcrumb(app: Any) -> str:
    """``dashboard › P2 › ad 01J…``: the crumbs of the screens open, oldest first (escape goes back one)."""
    crumbs = ["dashboard"] + [s.crumb for s in app.screen_stack[1:] if getattr(s, "crumb", None)]
    return " › ".join(crumbs)


class Crumbed(ModalScreen[None]):
    """A drill-down screen: a breadcrumb on top, escape (or q, as on every drill-down: regress45) goes back one."""

    BINDINGS = [Binding("escape,q", "dismiss", "back")]
    crumb = ""

    def breadcrumb_line(self) -> Static:
        return Static(Text(breadcrumb(self.app) + "   (escape: back)", style="bold"), classes="crumbs")


# --- the command line and the palette -------------------------------------------------------------------------


class CommandSuggester(Suggester):
    """Completes a command line from :func:`commands.suggestions` (what the dashboard knows now)."""

    def __init__(self, app: DashboardApp) -> None:
        super().__init__(use_cache=False, case_sensitive=False)
        self.dashboard = app

    async def get_suggestion(self, value: str) -> str | None:
        return commands.complete(value, readonly=self.dashboard.readonly,
                                 error_classes=self.dashboard.error_classes(), workers=self.dashboard.node_ids())


class CommandLine(Input):
    """``:``: one command; tab (or →) takes the completion, enter runs it, escape closes."""

    BINDINGS = [Binding("escape", "close", "close", show=False),
                Binding("tab", "complete", "complete", show=False)]

    def action_close(self) -> None:
        self.value = ""
        self.remove_class("-shown")
        self.app.query_one("#nodes-table").focus()

    def action_complete(self) -> None:
        if self._suggestion:
            self.value = self._suggestion
            self.cursor_position = len(self.value)


class DashboardCommands(Provider):
    """The command palette (``ctrl+p``): the same commands as the ``:`` line. A command that needs a number
    (``scale``) opens the command line with the command typed, for the operator to finish."""

    @property
    def dashboard(self) -> DashboardApp:
        return self.app  # type: ignore[return-value]

    def _lines(self) -> list[tuple[str, str]]:
        app = self.dashboard
        out = []
        for line in commands.suggestions(readonly=app.readonly, error_classes=app.error_classes(),
                                         workers=app.node_ids()):
            spec = commands.BY_NAME[line.split()[0]]
            out.append((line, spec.meaning))
        return out

    def _callback(self, line: str) -> Any:
        if line.startswith("scale"):
            return lambda: self.dashboard.open_command_line("scale ")
        if line.startswith("logs ad"):
            return lambda: self.dashboard.open_command_line("logs ad ")
        return lambda: self.dashboard.run_command_line(line)

    async def discover(self) -> Hits:
        for line, meaning in self._lines():
            yield DiscoveryHit(f":{line}", self._callback(line), help=meaning)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query.lstrip(":"))
        for line, meaning in self._lines():
            score = matcher.match(line)
            if score > 0:
                yield Hit(score, matcher.highlight(f":{line}"), self._callback(line), text=f":{line}", help=meaning)


# --- drill-down screens ---------------------------------------------------------------------------------------


class AdsTable(FilterTable):
    def __init__(self, **kw: Any) -> None:
        super().__init__(view_queue.LEVEL_AD_COLUMNS, flex="TITLE", drop=("ATT", "WORKER"), **kw)


class LevelScreen(Crumbed):
    """One priority level: its oldest waiting ads, then its oldest in flight (id, age, attempts, worker).
    Enter shows an ad's record; ``/`` filters (``!`` first inverts)."""

    BINDINGS = [Binding("escape,q", "back", "back"), Binding("slash", "filter", "filter", key_display="/")]
    #: focus and hidden parts set where composed, not queried in on_mount: a screen closed as it opens (the app
    #: ending) has its children gone by then (NoMatches ended the app: fresh45c)
    AUTO_FOCUS = "#level-table"

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level
        self.crumb = f"P{level}"
        self.loaded = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield self.breadcrumb_line()
            yield Static(Text(f"P{self.level}: reading its ads…", style="dim"), id="level-note")
            yield AdsTable(id="level-table")
            bar = Input(placeholder="filter rows (! first inverts; enter keeps, escape clears)", id="level-filter")
            bar.display = False
            yield bar

    def show(self, rows: Iterable[tuple[str, tuple[RenderableType, ...]]], note: str) -> None:
        self.query_one(AdsTable).set_rows(rows)
        self.query_one("#level-note", Static).update(Text(note, style="dim"))
        self.loaded = True

    def action_back(self) -> None:
        bar = self.query_one("#level-filter", Input)
        if bar.display:
            bar.display = False
            self.query_one(AdsTable).focus()
            return
        self.dismiss()

    def action_filter(self) -> None:
        bar = self.query_one("#level-filter", Input)
        bar.value = self.query_one(AdsTable).filter_text
        bar.display = True
        bar.focus()

    @on(Input.Changed, "#level-filter")
    def _changed(self, event: Input.Changed) -> None:
        self.query_one(AdsTable).filter_text = event.value

    @on(Input.Submitted, "#level-filter")
    def _submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.query_one(AdsTable).focus()

    @on(AdsTable.RowSelected)
    def _selected(self, event: AdsTable.RowSelected) -> None:
        event.stop()
        self.app.open_ad(str(event.row_key.value))  # type: ignore[attr-defined]


class RecordScreen(Crumbed):
    """Every field of one record (an ad with its analysis, a node, a dead letter) under a breadcrumb."""

    BINDINGS = [Binding("escape,enter,q", "dismiss", "back")]

    def __init__(self, crumb: str, body: RenderableType) -> None:
        super().__init__()
        self.crumb = crumb
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield self.breadcrumb_line()
            with VerticalScroll():
                yield Static(self.body, id="detail-body")


class LogScreen(Crumbed):
    """The live tail of one worker's log or of one ad's story (:mod:`gamead_cli.tui.logs`): the last lines,
    then each new one as it is written, while the screen is open. Reads run in a worker thread, one at a time: a
    tick while one is on its way starts none (tui54: each tick cancelled the read in flight, whose thread had
    already taken its lines from the file; at load, where a read and its way back outlast a tick, no line showed)."""

    BINDINGS = [Binding("escape,q", "dismiss", "back")]
    AUTO_FOCUS = "#log-lines"  # as LevelScreen's

    def __init__(self, follower: LogFollower, every: float = 1.0) -> None:
        super().__init__()
        self.follower = follower
        self.every = every
        self.crumb = follower.title
        self.lines_shown = 0
        self.reads = 0
        self._reading = False  #: a read is on its way (started, its lines not shown yet)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield self.breadcrumb_line()
            yield Static(Text(f"{self.follower.title} · from {self.follower.log_dir} · following (escape: back)",
                              style="dim"), id="log-note")
            yield Log(max_lines=MAX_LINES, id="log-lines")

    def on_mount(self) -> None:
        self.follow()
        self.set_interval(self.every, self.follow)

    def text(self) -> str:
        """Every line on the screen now (plain text; empty before the screen is composed)."""
        return "\n".join(line for log in self.query("#log-lines").results(Log) for line in log.lines)

    def follow(self) -> None:
        """Read what was appended and show it (each tick), unless the last read is still on its way: its lines are
        shown first, and the next tick reads on from there."""
        if not self._reading:
            self._reading = True
            self._read()

    @work(group="log-tail", exit_on_error=False)
    async def _read(self) -> None:
        try:
            lines = await asyncio.to_thread(self.follower.read)
        except LogsUnavailable as exc:
            self.query_one("#log-note", Static).update(Text(str(exc), style="bold red"))
            return
        except OSError as exc:
            self.query_one("#log-note", Static).update(Text(f"cannot read the logs: {exc}", style="bold red"))
            return
        finally:
            self._reading = False
        self.reads += 1
        if lines:
            self.query_one("#log-lines", Log).write_lines(lines)
            self.lines_shown += len(lines)
        elif self.reads == 1:
            self.query_one("#log-lines", Log).write_line("(no lines yet; new ones show as they are written)")


# --- the typed confirmation -----------------------------------------------------------------------------------


class TypedConfirmScreen(ModalScreen[bool]):
    """A destructive bulk action: the operator types the number of entries it will touch, then enter.
    Anything else keeps the dialog open (and says so); escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]
    AUTO_FOCUS = "#typed-count"  # as LevelScreen's

    def __init__(self, question: str, count: int, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.count = count
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.question, style="bold"), id="question")
            if self.detail:
                yield Static(Text(self.detail, style="dim"), id="detail")
            yield Static(Text.from_markup(f"type [b]{self.count}[/b] and enter to go on, escape to cancel"),
                         classes="hint", id="typed-hint")
            yield Input(placeholder=f"type {self.count}", id="typed-count", max_length=12)

    @on(Input.Submitted, "#typed-count")
    def _typed(self, event: Input.Submitted) -> None:
        if event.value.strip().replace(",", "") == str(self.count):
            self.dismiss(True)
            return
        event.input.value = ""
        self.query_one("#typed-hint", Static).update(
            Text(f"that is not {self.count}: type {self.count} to go on, escape to cancel", style="bold red"))

    def action_cancel(self) -> None:
        self.dismiss(False)
