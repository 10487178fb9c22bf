"""``gamead top``: the live dashboard, a Textual app that reads the gamead API over HTTP.

Layout in ``compose``, colours in ``top.tcss``, state in reactives (the widgets' are bound to the app's),
I/O in workers: every ``refresh`` seconds one worker fetches ``/v1/stats`` and ``/v1/workers`` (and the DLQ
page when it may have changed) in a thread, then sets the reactives. A failed refresh keeps the last data
on screen under a banner and the next tick simply tries again — the app never ends on an API error.

This module holds the app's layout, keys and message handlers; its other jobs are mixed in: refreshing
(``app_refresh``), replaying a recording (``app_replay``), the DLQ's replay / purge (``app_dlq``) and the
command line with its drill-downs (``app_commands``), and the stops from outside — signals, a terminal gone
(``app_stops``).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.geometry import Size
from textual.reactive import var
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input

from gamead_cli.tui import commands, view_tables
from gamead_cli.tui.app_commands import CommandActions
from gamead_cli.tui.app_dlq import DlqActions
from gamead_cli.tui.app_refresh import Refreshing
from gamead_cli.tui.app_replay import ReplayControls
from gamead_cli.tui.app_stops import StopsFromOutside
from gamead_cli.tui.recording import Player, Recorder
from gamead_cli.tui.screens import CommandLine, CommandSuggester, DashboardCommands
from gamead_cli.tui.source import DataSource, ShownSource
from gamead_cli.tui.turns import Turns
from gamead_cli.tui.typeahead import HELD_MOUSE, TypeAhead
from gamead_cli.tui.view import Snapshot
from gamead_cli.tui.view_queue import HISTORY_POINTS
from gamead_cli.tui.widgets import (
    AutoscalerLine,
    Banner,
    JobLine,
    MetricsPanel,
    QueuePanel,
    SummaryBar,
)
from gamead_cli.tui.widgets_help import DetailScreen, HelpScreen
from gamead_cli.tui.widgets_tables import (
    AuditPanel,
    DlqPanel,
    DlqTable,
    FilterBar,
    FilterTable,
    NodesPanel,
    NodesTable,
)

_DASHBOARD_ACTIONS = frozenset({"help", "filter", "replay", "purge", "pause", "command"})
#: actions that change the service: absent from a read-only dashboard
_WRITE_ACTIONS = frozenset({"replay", "purge"})
#: keys that only mean something while replaying a recording
_REPLAY_ACTIONS = frozenset({"step", "faster", "slower"})
#: Panels dropped, in this order, as the terminal shrinks: (widget id, axis, smallest size that shows it).
#: The summary line, the dead letters and the footer always stay.
DROP_ORDER: tuple[tuple[str, str, int], ...] = (
    ("metrics", "width", 80),  # 1. narrower than 80 columns: the queue panel takes the whole row
    ("audit", "height", 24),  # 2. shorter than 24 rows: the audit panel (`gamead audit` has it all)
    ("autoscaler", "height", 22),  # 3. shorter than 22 rows: the autoscaler line
    ("top-row", "height", 18),  # 4. shorter than 18 rows: the queue panel
    ("nodes", "height", 12),  # 5. shorter than 12 rows: the nodes
)


class DashboardApp(StopsFromOutside, Refreshing, ReplayControls, DlqActions, CommandActions, App[None]):
    """The ``gamead top`` dashboard over any :class:`~gamead_cli.tui.source.DataSource`."""

    CSS_PATH = "top.tcss"
    TITLE = "gamead top"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-short"), (32, "-tall")]
    ENABLE_COMMAND_PALETTE = True  # ctrl+p; not in the footer: its room goes to the dashboard's own keys
    COMMANDS = {DashboardCommands}
    #: in footer order: quit and help first, so a narrow footer still shows them
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        # Ctrl-C quits, as in k9s and every other terminal program, from any panel, input or screen (Textual's
        # own ctrl+c only showed a toast naming another key); exit code 130 as for SIGINT (README exit codes)
        Binding("ctrl+c", "interrupt", "quit", show=False, priority=True),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("colon", "command", "command", key_display=":"),
        Binding("slash", "filter", "filter", key_display="/"),
        Binding("r", "replay", "replay"),
        Binding("x", "purge", "purge"),
        Binding("p", "pause", "pause"),
        Binding("comma", "step(-1)", "back", key_display=","),
        Binding("full_stop", "step(1)", "step", key_display="."),
        Binding("minus", "slower", "slower", key_display="-"),
        Binding("plus", "faster", "faster", key_display="+"),
    ]

    # ``var``: the app itself draws nothing; the widgets bound to these repaint their own regions only.
    stats: var[Mapping[str, Any] | None] = var(None)
    nodes: var[Sequence[Mapping[str, Any]] | None] = var(None)  #: None: not read yet (the nodes panel: tui42 F5)
    dlq: var[Mapping[str, Any] | None] = var(None)
    dlq_error: var[str | None] = var(None)
    audit: var[Mapping[str, Any] | None] = var(None)
    audit_error: var[str | None] = var(None)
    error: var[str | None] = var(None)
    paused: var[bool] = var(False)
    #: no actions: ``--readonly``, or a token that may not act (``GET /v1/whoami``: a viewer's)
    readonly: var[bool] = var(False)
    #: the last ``:doctor`` verdict (``GET /v1/doctor``), run on demand only: a full check is not a poll
    doctor: var[Mapping[str, Any] | None] = var(None)
    doctor_error: var[str | None] = var(None)
    #: the job a replay / purge started, as its progress stream last showed it
    job: var[Mapping[str, Any] | None] = var(None)
    #: ``frame 12/300 ×2 (recorded 12:34:56)`` while replaying a recording, else None
    replaying: var[str | None] = var(None)

    def __init__(self, source: DataSource, *, refresh: float = 1.0, history: int = HISTORY_POINTS,
                 readonly: bool = False, recorder: Recorder | None = None, player: Player | None = None,
                 log_dir: Path | None = None) -> None:
        super().__init__()
        self.log_dir = log_dir  #: where ``:logs`` reads (None: not reachable; see ``gamead top --logs``)
        #: every answer shown escaped (ShownSource): no stored text can restyle the terminal
        self.source: DataSource = ShownSource(source if player is None else player)  # type: ignore[assignment]
        self.recorder = recorder
        self.player = player
        self.speed = 1.0
        readonly = readonly or player is not None  # a replay acts on nothing
        self.set_reactive(DashboardApp.readonly, readonly)
        self._role_known = readonly  #: asked the API who we are (not needed when already read-only)
        self.refresh_seconds = max(0.1, refresh)
        self.history = history
        self.snapshot: Snapshot | None = None
        self.failures = 0
        self._shown_at: float | None = None  #: monotonic seconds the last answer was shown (app_refresh.stale_note)
        self._failure: str | None = None  #: the banner of the last refresh's failure, without the figures' age
        self._aging: Timer | None = None  #: ticks the banner's age while the figures are stale (app_refresh)
        self._busy = False  #: a refresh (or a replay's frame) is on its way
        self._again = False  #: a refresh was asked for while one was on its way: it follows that one
        self._steps = 0  #: a replay's frames stepped (``.`` +1, ``,`` -1) while one was on its way: they follow it
        self._turns: dict[str, Turns] = {}  #: requests of a kind taken in turn (app_commands.in_turn)
        self._ticks = 0
        #: the id of the job whose line each refresh brings up to date until it ends (app_refresh.follow_job)
        self._job_followed: str | None = None
        self._dlq_forced = True
        self._dlq_size_seen: Any = object()
        self._filter_target: FilterTable | None = None
        #: keys typed ahead go one at a time, each to what the keys before it opened (regress41 F5)
        self.typeahead = TypeAhead(self, super().on_event)

    # --- layout ---------------------------------------------------------------------------------------

    def notify(self, message: str, *, title: str = "", severity: Any = "information", timeout: float | None = None,
               markup: bool | None = None) -> None:
        """Textual's toast, but gamead's text is shown as is: a notification carries ids, filters and error
        messages from the server (``[link=x]y``, ``/[/``), never markup. Every ``notify`` of the app and its
        screens comes here. Textual's own toasts (called from a ``textual`` module, e.g. a saved screenshot)
        are written in its markup and rendered as such: no toast shows raw ``[b]…[/b]`` (ops13 finding 2)."""
        if markup is None:
            markup = sys._getframe(1).f_globals.get("__name__", "").startswith("textual.")
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    async def on_event(self, event: events.Event) -> None:
        """A key, a paste or a mouse button read from the terminal waits for the keys before it
        (:mod:`gamead_cli.tui.typeahead`)."""
        if isinstance(event, (events.Key, events.Paste, *HELD_MOUSE)) and not event.is_forwarded:
            await self.typeahead.key(event)
        else:
            await super().on_event(event)

    def action_interrupt(self) -> None:
        """Ctrl-C: quit at once, with exit code 130 (``gamead top`` passes it on)."""
        self.stop_by(signal.SIGINT, signalled=False)

    def compose(self) -> ComposeResult:
        yield SummaryBar(self.source.api_url, id="summary").data_bind(
            DashboardApp.stats, DashboardApp.paused, DashboardApp.readonly, DashboardApp.doctor,
            DashboardApp.doctor_error, DashboardApp.nodes, replaying=DashboardApp.replaying)
        yield Banner(id="banner").data_bind(message=DashboardApp.error)
        with Horizontal(id="top-row"):
            yield QueuePanel(history_seconds=self.history, id="queue").data_bind(DashboardApp.stats)
            yield MetricsPanel(id="metrics").data_bind(DashboardApp.stats)
        yield NodesPanel(id="nodes").data_bind(DashboardApp.nodes)
        yield DlqPanel(id="dlq").data_bind(DashboardApp.stats, DashboardApp.dlq, DashboardApp.dlq_error)
        yield AuditPanel(id="audit").data_bind(DashboardApp.audit, DashboardApp.audit_error)
        yield JobLine(id="job").data_bind(DashboardApp.job)
        yield FilterBar(placeholder="filter rows (! first inverts; enter keeps, escape clears)", id="filter")
        yield CommandLine(placeholder=":command (tab completes: dlq, workers, level 2, audit, doctor, …)",
                          id="command", suggester=CommandSuggester(self))
        yield AutoscalerLine(id="autoscaler").data_bind(DashboardApp.stats)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(NodesTable).focus()
        self.fit(self.size)
        self.watch_terminal()  # a terminal gone without a signal ends the dashboard too (app_stops)
        self._timer = self.set_interval(self.refresh_seconds, self.tick)
        self.tick()

    def on_resize(self, event: events.Resize) -> None:
        self.fit(event.size)

    def fit(self, size: Size) -> None:
        """Show the panels that fit ``size``, dropping whole panels in :data:`DROP_ORDER`."""
        for widget_id, axis, smallest in DROP_ORDER:
            shown = (size.width if axis == "width" else size.height) >= smallest
            widget = self.query_one(f"#{widget_id}")
            if widget.display != shown:
                widget.display = shown

    # --- actions --------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The dashboard's keys do nothing while a dialog is open (``y``/``n``/escape belong to it)."""
        if action in (_DASHBOARD_ACTIONS | _REPLAY_ACTIONS) and isinstance(self.screen, ModalScreen):
            return False
        if action in _REPLAY_ACTIONS and self.player is None:
            return False  # only while replaying a recording
        if action in _WRITE_ACTIONS and self.readonly:
            return False  # hidden from the footer, and the key does nothing
        return True

    def action_help(self) -> None:
        self.push_screen(HelpScreen(readonly=self.readonly, replay=self.player is not None))

    def action_pause(self) -> None:
        if self.player is not None and self.paused and self.player.position >= len(self.player) - 1:
            self.player.position = -1  # at the end: play again from the start
        self.paused = not self.paused
        self.notify("refresh paused — press p to resume" if self.paused else "refresh resumed", timeout=2)
        if not self.paused:
            self.refresh_now()

    def action_filter(self) -> None:
        focused = self.focused
        target = focused if isinstance(focused, FilterTable) else self.query_one(NodesTable)
        self._filter_target = target
        bar = self.query_one(FilterBar)
        bar.value = target.filter_text
        bar.add_class("-shown")
        bar.focus()

    def on_paste(self, event: events.Paste) -> None:
        """A terminal's paste no input took (it bubbled up from a table or the screen): one whose first line starts
        with ``:`` or ``/`` opens the command line or the filter with the rest of that line typed, as typing it
        would, and runs nothing until enter (:func:`gamead_cli.tui.commands.pasted`); any other is ignored, and so
        is every paste while a dialog is open. ``tmux paste-buffer -p`` of ``:level 4`` did nothing (regress41b F7)."""
        opens = commands.pasted(event.text)
        if opens is None or not self.check_action(opens[0], ()):
            return
        action, rest = opens
        if action == "command":
            self.open_command_line(rest)
        else:
            self.action_filter()
            self.query_one(FilterBar).insert_text_at_cursor(rest)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._filter_target is not None:
            self._filter_target.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.query_one(FilterBar).remove_class("-shown")
        if self._filter_target is not None:
            self._filter_target.filter_text = event.value
            self._filter_target.focus()

    @on(Input.Submitted, "#command")
    def _command_done(self, event: Input.Submitted) -> None:
        line = self.query_one(CommandLine)
        line.remove_class("-shown")
        line.value = ""
        self.query_one(NodesTable).focus()
        if event.value.strip():
            self.run_command_line(event.value)

    @on(QueuePanel.LevelChosen)
    def _level_chosen(self, event: QueuePanel.LevelChosen) -> None:
        self.open_level(event.level)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        if isinstance(event.data_table, NodesTable):
            node = next((n for n in self.nodes or () if str(n.get("id")) == key), None)
            if node is not None:
                self.push_screen(DetailScreen(f"node {key}", view_tables.node_details(node)))
        elif isinstance(event.data_table, DlqTable):
            self.open_dlq_entry(key)
