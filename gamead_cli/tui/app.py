"""``gamead top``: the live dashboard, a Textual app that reads the gamead API over HTTP.

Layout in ``compose``, colours in ``top.tcss``, state in reactives (the widgets' are bound to the app's),
I/O in workers: every ``refresh`` seconds one worker fetches ``/v1/stats`` and ``/v1/workers`` (and the DLQ
page when it may have changed) in a thread, then sets the reactives. A failed refresh keeps the last data
on screen under a banner and the next tick simply tries again — the app never ends on an API error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.geometry import Size
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.reactive import var
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input

from gamead_cli import exitcodes
from gamead_cli.tui import commands, view
from gamead_cli.tui.commands import CommandError
from gamead_cli.tui.logs import LogsUnavailable, follower
from gamead_cli.tui.screens import (
    CommandLine,
    CommandSuggester,
    DashboardCommands,
    LevelScreen,
    LogScreen,
    RecordScreen,
    TypedConfirmScreen,
)
from gamead_cli.tui.recording import Player, Recorder
from gamead_cli.tui.source import DataSource, ShownSource, fetch_snapshot
from gamead_cli.tui.view import Snapshot
from gamead_cli.tui.widgets import (
    AuditPanel,
    AutoscalerLine,
    Banner,
    DetailScreen,
    DlqPanel,
    DlqTable,
    FilterBar,
    FilterTable,
    HelpScreen,
    JobLine,
    MetricsPanel,
    NodesPanel,
    NodesTable,
    QueuePanel,
    SummaryBar,
)
from gamead_core.errors import ApiClientError, ApiUnreachable, NotFound, error_text

log = logging.getLogger(__name__)

#: one-second samples asked of ``/v1/stats`` for the sparklines (five minutes)
HISTORY_POINTS = 300
#: the DLQ page is re-read at least every this many refreshes (and whenever its size changes)
DLQ_EVERY = 5
_DASHBOARD_ACTIONS = frozenset({"help", "filter", "replay", "purge", "pause", "command"})
#: actions that change the service: absent from a read-only dashboard
_WRITE_ACTIONS = frozenset({"replay", "purge"})
#: ads a level's drill-down lists (``GET /v1/levels/{level}/oldest``)
LEVEL_READ = 50
#: the replay's speeds (``+``/``-``): frames per refresh period
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
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


def describe_failure(exc: BaseException, refresh: float, attempts: int) -> str:
    """The banner for a failed refresh: what failed and that we keep trying."""
    retry = f"retrying every {refresh:g}s (attempt {attempts})"
    if isinstance(exc, ApiUnreachable):
        return f"⚠ API unreachable — {exc.message} — {retry}"
    if isinstance(exc, ApiClientError):
        if exc.status in (401, 403):
            return f"⚠ not allowed to read the API: {exc.message}"
        return f"⚠ the API answered an error: {exc.message} — {retry}"
    return f"⚠ refresh failed: {type(exc).__name__}: {exc} — {retry}"


class DashboardApp(App[None]):
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
    nodes: var[Sequence[Mapping[str, Any]]] = var(())
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
        self._busy = False
        self._ticks = 0
        self._dlq_forced = True
        self._dlq_size_seen: Any = object()
        self._filter_target: FilterTable | None = None

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

    def action_interrupt(self) -> None:
        """Ctrl-C: quit at once, with exit code 130 (``gamead top`` passes it on)."""
        self.exit(return_code=exitcodes.INTERRUPTED)

    def compose(self) -> ComposeResult:
        yield SummaryBar(self.source.api_url, id="summary").data_bind(
            DashboardApp.stats, DashboardApp.paused, DashboardApp.readonly, DashboardApp.doctor,
            DashboardApp.doctor_error, replaying=DashboardApp.replaying)
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

    # --- refreshing -----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Start a refresh unless paused or one is still running (a slow API is not piled on)."""
        if self.paused or self._busy:
            return
        self._busy = True
        self.poll()

    def _want_dlq(self, stats: Mapping[str, Any]) -> bool:
        size = (stats.get("dlq") or {}).get("size") if isinstance(stats, Mapping) else None
        due = self._dlq_forced or self._ticks % DLQ_EVERY == 0 or size != self._dlq_size_seen
        if due:
            self._dlq_size_seen = size
        return due

    @work(exclusive=True, group="poll", exit_on_error=False)
    async def poll(self) -> None:
        if self.player is not None:
            await self.play(1)
            return
        try:
            self._ticks += 1
            forced = self._dlq_forced
            snap = await asyncio.to_thread(
                fetch_snapshot, self.source, self.history, want_dlq=self._want_dlq, previous=self.snapshot)
            if forced:
                self._dlq_forced = False
            self.apply(snap)
            if self.recorder is not None:
                await self.record(snap)
            if not self._role_known:
                await self.learn_role()
        except Exception as exc:  # noqa: BLE001 - any failure becomes the banner; the next tick retries
            self.failures += 1
            self._dlq_forced = True
            self.error = describe_failure(exc, self.refresh_seconds, self.failures)
            self._stale(True)
        finally:
            self._busy = False

    async def record(self, snap: Snapshot) -> None:
        """``--record``: append the snapshot; say once when the size cap stops the recording."""
        assert self.recorder is not None
        full = self.recorder.full
        try:
            await asyncio.to_thread(self.recorder.write, snap)
        except (OSError, exitcodes.OutputFailed) as exc:  # OutputFailed: the file cannot take it (atomic.PendingFile)
            self.notify(f"recording stopped: {getattr(exc, 'strerror', None) or exc}", severity="error", timeout=10)
            with contextlib.suppress(OSError, exitcodes.OutputFailed):  # what it holds cannot be written either
                self.recorder.close()
            self.recorder = None
            return
        if self.recorder.full and not full:
            self.notify(f"recording stopped at its size cap ({self.recorder.written:,} bytes, "
                        f"{self.recorder.frames:,} snapshots in {self.recorder.path})", severity="warning",
                        timeout=10)

    async def play(self, step: int) -> None:
        """Show the recording's frame ``step`` away from the current one; pause at either end."""
        player = self.player
        assert player is not None
        try:
            target = player.position + step
            if target >= len(player):
                if not self.paused:
                    self.paused = True
                    self.notify("end of the recording: , steps back, p plays it again", timeout=6)
                return
            snap = await asyncio.to_thread(player.frame, target)
            self.apply(snap)
            self._show_position()
        except Exception as exc:  # noqa: BLE001 - a bad recording is a banner, not a traceback
            self.error = f"⚠ cannot replay: {error_text(exc)}"
        finally:
            self._busy = False

    def _show_position(self) -> None:
        """The header's ``REPLAY frame 12/300 ×2 · received 12:34:56``."""
        player = self.player
        if player is None:
            return
        at = f" · received {view.short_time(_iso(player.at))}" if player.at else ""
        speed = f" ×{self.speed:g}" if self.speed != 1 else ""
        self.replaying = f"frame {player.position + 1}/{len(player)}{speed}{at}"

    async def learn_role(self) -> None:
        """Ask the API who this token is (``GET /v1/whoami``) and turn read-only if it may not act. An API
        without the route, or a token that may not ask, leaves the dashboard as it is; other failures are
        retried at the next refresh."""
        try:
            me = await asyncio.to_thread(self.source.whoami)
        except NotFound:
            self._role_known = True
            return
        except ApiClientError as exc:
            self._role_known = exc.status is not None and exc.status < 500
            return
        self._role_known = True
        if not me.get("mayAct", True) and not self.readonly:
            self.readonly = True
            self.notify(f"read-only: token {me.get('name')!r} has role {me.get('role')!r}, which may not replay "
                        "or purge", timeout=6)

    def watch_readonly(self) -> None:
        self.refresh_bindings()  # the footer drops (or shows) replay and purge

    def apply(self, snap: Snapshot) -> None:
        """Show one snapshot (called on the app's thread)."""
        self.snapshot = snap
        self.failures = 0
        try:
            self.stats = snap.stats
            self.nodes = list(snap.nodes)
            self.dlq = snap.dlq
            self.dlq_error = snap.dlq_error
            self.audit = snap.audit
            self.audit_error = snap.audit_error
        except Exception as exc:  # noqa: BLE001 - unexpected data must not end the app
            log.debug("cannot show snapshot", exc_info=True)
            self.error = f"⚠ cannot show the API's answer: {type(exc).__name__}: {exc}"
            return
        self.error = None
        self._stale(False)

    def _stale(self, stale: bool) -> None:
        self.query("#top-row, NodesPanel, DlqPanel, AuditPanel").set_class(stale, "-stale")

    def refresh_now(self, *, dlq: bool = False) -> None:
        if dlq:
            self._dlq_forced = True
        self._busy = False
        self.tick()

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

    def action_step(self, step: int) -> None:
        """Replay: pause and show the next (``.``) or the previous (``,``) frame."""
        self.paused = True
        if not self._busy:
            self._busy = True
            self.run_worker(self.play(step), group="poll", exclusive=True, exit_on_error=False)

    def _set_speed(self, faster: bool) -> None:
        i = SPEEDS.index(self.speed) if self.speed in SPEEDS else SPEEDS.index(1.0)
        self.speed = SPEEDS[min(len(SPEEDS) - 1, i + 1) if faster else max(0, i - 1)]
        self._timer.stop()
        self._timer = self.set_interval(self.refresh_seconds / self.speed, self.tick)
        self._show_position()

    def action_faster(self) -> None:
        self._set_speed(True)

    def action_slower(self) -> None:
        self._set_speed(False)

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

    def _dlq_selection(self) -> list[str]:
        return self.query_one(DlqTable).selection()

    def action_replay(self) -> None:
        self._confirm_dlq("replay")

    def action_purge(self) -> None:
        self._confirm_dlq("purge")

    @staticmethod
    def _question(verb: str, n: int, what: str = "") -> str:
        s, their = ("s", "their") if n != 1 else ("", "its")
        if verb == "replay":
            return f"Replay {n:,} dead-lettered ad{s}{what} to {their} original priority?"
        return f"Purge {n:,} dead-lettered ad{s}{what} for good? This cannot be undone."

    def _confirm_dlq(self, verb: str) -> None:
        ids = self._dlq_selection()
        if not ids:
            self.notify(f"nothing to {verb}: select a DLQ entry (tab to the DLQ, space marks)", severity="warning")
            return
        shown = ", ".join(ids[:5]) + (f" … (+{len(ids) - 5})" if len(ids) > 5 else "")

        def answered(yes: bool | None) -> None:
            if yes:
                self.dlq_action(verb, ids)

        self.push_screen(TypedConfirmScreen(self._question(verb, len(ids)), len(ids), shown), answered)

    @work(group="dlq-count", exclusive=True, exit_on_error=False)
    async def confirm_filter(self, verb: str, flt: dict[str, Any]) -> None:
        """``:replay class=X``: count what the filter matches now (a dry run), then the typed confirmation."""
        try:
            matched = await asyncio.to_thread(self.source.count, flt)
        except Exception as exc:  # noqa: BLE001 - say so, keep running
            self.notify(f"{verb} failed: {error_text(exc)}", severity="error", timeout=8)
            return
        what = " of class " + str(flt.get("errorClass"))
        if not matched:
            self.notify(f"nothing to {verb}: no DLQ entry{what}", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.dlq_action(verb, None, flt)

        self.push_screen(TypedConfirmScreen(self._question(verb, matched, what), matched,
                                            f"one server-side job over every entry{what} (matched now)"), answered)

    @work(group="dlq-action", exit_on_error=False)
    async def dlq_action(self, verb: str, ids: list[str] | None, flt: dict[str, Any] | None = None) -> None:
        """One server-side job over ``ids`` (or every entry ``flt`` matches); its progress shows in the job
        line as the stream reports it, its audit record in the audit panel at the next refresh."""
        call = self.source.replay if verb == "replay" else self.source.purge

        def progress(job: dict[str, Any]) -> None:
            self.call_from_thread(setattr, self, "job", dict(job))

        try:
            result = await asyncio.to_thread(call, ids, flt=flt, progress=progress)
        except Exception as exc:  # noqa: BLE001 - say so, keep running
            self.notify(f"{verb} failed: {error_text(exc)}", severity="error", timeout=8)
            return
        done = result.get("replayed" if verb == "replay" else "purged", 0)
        extra = ""
        if verb == "replay" and (result.get("skipped") or result.get("failed")):
            extra = f" (skipped {result.get('skipped', 0)}, failed {result.get('failed', 0)})"
        past = "replayed" if verb == "replay" else "purged"
        of = f" of {len(ids)}" if ids is not None else f" of class {(flt or {}).get('errorClass')}"
        self.notify(f"{past} {done}{of}{extra}", severity="information", timeout=4)
        self.query_one(DlqTable).marked.clear()
        self.refresh_now(dlq=True)

    # --- the command line and the palette ----------------------------------------------------------------

    def error_classes(self) -> list[str]:
        """The error classes of the DLQ entries in view, most frequent first (for completion)."""
        items = [i for i in (self.dlq or {}).get("items") or [] if isinstance(i, Mapping)]
        return [cls for cls, _ in view.error_groups(items) if cls != "?"]

    def node_ids(self) -> list[str]:
        """The ids of the nodes in view (for ``:logs`` completion)."""
        return [str(n.get("id")) for n in self.nodes if isinstance(n, Mapping) and n.get("id")]

    def open_logs(self, args: list[str]) -> None:
        """``:logs WORKER`` / ``:logs ad AD_ID`` / ``l`` on a node: the live tail, or one line saying why not."""
        try:
            tail = follower(self.log_dir, args)
        except LogsUnavailable as exc:
            self.notify(str(exc), severity="warning", timeout=6)
            return
        self.push_screen(LogScreen(tail, every=self.refresh_seconds))

    def action_command(self) -> None:
        self.open_command_line("")

    def open_command_line(self, text: str) -> None:
        line = self.query_one(CommandLine)
        line.value = text
        line.cursor_position = len(text)
        line.add_class("-shown")
        line.focus()

    @on(Input.Submitted, "#command")
    def _command_done(self, event: Input.Submitted) -> None:
        line = self.query_one(CommandLine)
        line.remove_class("-shown")
        line.value = ""
        self.query_one(NodesTable).focus()
        if event.value.strip():
            self.run_command_line(event.value)

    def run_command_line(self, text: str) -> None:
        """Run one command line (``:`` or the palette); a bad one is a one-line warning, never an exception."""
        try:
            cmd = commands.parse(text)
        except CommandError as exc:
            self.notify(str(exc), severity="warning", timeout=5)
            return
        if cmd.acts and self.readonly:
            self.notify(f"read-only: {cmd.name} is off (--readonly, or a token that may not act)",
                        severity="warning", timeout=5)
            return
        if cmd.name == "dlq":
            self.query_one(DlqTable).focus()
        elif cmd.name == "workers":
            self.query_one(NodesTable).focus()
        elif cmd.name == "level":
            self.open_level(cmd.args["level"])
        elif cmd.name == "audit":
            self.show_audit()
        elif cmd.name == "logs":
            self.open_logs(["ad", cmd.args["ad_id"]] if "ad_id" in cmd.args else [cmd.args["worker"]])
        elif cmd.name == "doctor":
            self.run_doctor()
        elif cmd.name == "scale":
            self.scale(cmd.args["replicas"], cmd.args["seconds"])
        elif cmd.name in ("replay", "purge"):
            self.confirm_filter(cmd.name, cmd.args["filter"])
        elif cmd.name == "pause":
            self.action_pause()
        elif cmd.name == "help":
            self.action_help()
        elif cmd.name == "quit":
            self.exit()

    # --- drill-down --------------------------------------------------------------------------------------

    def open_level(self, level: int) -> None:
        screen = LevelScreen(level)
        self.push_screen(screen)
        self.load_level(screen)

    @work(group="level", exclusive=True, exit_on_error=False)
    async def load_level(self, screen: LevelScreen) -> None:
        level = screen.level
        try:
            page = await asyncio.to_thread(self.source.oldest, level, LEVEL_READ)
        except Exception as exc:  # noqa: BLE001 - say so on the screen
            screen.show([], f"P{level}: cannot read its ads: {error_text(exc)}")
            return
        rows = view.level_ads(page.get("items") or [])
        how = (" (from the newest records: this API has no /v1/levels)" if page.get("partial")
               else "")
        note = (f"P{level}: {view.num(page.get('pending'))} pending, {view.num(page.get('ackPending'))} ack pending; "
                f"the oldest {len(rows)}, oldest first{how} · enter: the ad's record")
        screen.show(rows, note)

    @work(group="details", exclusive=True, exit_on_error=False)
    async def show_ad(self, ad_id: str) -> None:
        try:
            record = await asyncio.to_thread(self.source.ad, ad_id)
        except Exception as exc:  # noqa: BLE001 - say so, keep running
            self.notify(f"ad {ad_id}: {error_text(exc)}", severity="warning")
            return
        self.push_screen(RecordScreen(f"ad {ad_id}", view.details_view(record)))

    @work(group="details", exclusive=True, exit_on_error=False)
    async def show_audit(self) -> None:
        try:
            audit = await asyncio.to_thread(self.source.audit, 50)
        except Exception as exc:  # noqa: BLE001 - say so, keep running
            self.notify(f"audit trail: {error_text(exc)}", severity="warning")
            return
        self.push_screen(RecordScreen("audit", view.audit_table(audit, header=True, limit=50)))

    @work(group="doctor", exclusive=True, exit_on_error=False)
    async def run_doctor(self) -> None:
        """``:doctor``: one full check; its verdict and time stay in the header until the next ``:doctor``."""
        self.notify("doctor: checking every invariant…", timeout=3)
        try:
            verdict = await asyncio.to_thread(self.source.doctor)
        except Exception as exc:  # noqa: BLE001 - shown in the header
            self.doctor_error = error_text(exc)
            return
        self.doctor_error = None
        self.doctor = verdict
        problems = verdict.get("problems") or 0
        self.notify("doctor: every invariant holds" if verdict.get("ok") else f"doctor: {problems} problem(s)",
                    severity="information" if verdict.get("ok") else "warning", timeout=5)

    @work(group="scale", exclusive=True, exit_on_error=False)
    async def scale(self, replicas: int, seconds: int) -> None:
        try:
            answer = await asyncio.to_thread(self.source.scale, replicas, seconds)
        except Exception as exc:  # noqa: BLE001 - say so, keep running
            self.notify(f"scale failed: {error_text(exc)}", severity="error", timeout=8)
            return
        note = f" ({answer['note']})" if answer.get("note") else ""
        self.notify(f"holding {answer.get('effectiveReplicas', replicas)} workers for {seconds:,}s{note}",
                    timeout=5)
        self.refresh_now(dlq=True)

    @on(QueuePanel.LevelChosen)
    def _level_chosen(self, event: QueuePanel.LevelChosen) -> None:
        self.open_level(event.level)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        if isinstance(event.data_table, NodesTable):
            node = next((n for n in self.nodes if str(n.get("id")) == key), None)
            if node is not None:
                self.push_screen(DetailScreen(f"node {key}", view.details_view(node)))
        elif isinstance(event.data_table, DlqTable):
            self.show_dlq_entry(key)

    @work(group="details", exclusive=True, exit_on_error=False)
    async def show_dlq_entry(self, entry_id: str) -> None:
        try:
            entry = await asyncio.to_thread(self.source.dlq_entry, entry_id)
        except Exception:  # noqa: BLE001 - fall back to the row we already have
            entry = next((e for e in (self.dlq or {}).get("items") or [] if view.dlq_id(e) == entry_id), None)
        if entry is None:
            self.notify(f"DLQ entry {entry_id} is gone", severity="warning")
            return
        self.push_screen(DetailScreen(f"dead letter {entry_id}", view.details_view(entry)))


def _iso(epoch: float | None) -> str | None:
    from datetime import datetime, timezone

    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).isoformat()
