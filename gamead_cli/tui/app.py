"""``gamead top``: the live dashboard, a Textual app that reads the gamead API over HTTP.

Layout in ``compose``, colours in ``top.tcss``, state in reactives (the widgets' are bound to the app's),
I/O in workers: every ``refresh`` seconds one worker fetches ``/v1/stats`` and ``/v1/workers`` (and the DLQ
page when it may have changed) in a thread, then sets the reactives. A failed refresh keeps the last data
on screen under a banner and the next tick simply tries again — the app never ends on an API error.
"""

from __future__ import annotations

import asyncio
import logging
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

from gamead_cli.tui import view
from gamead_cli.tui.source import DataSource, fetch_snapshot
from gamead_cli.tui.view import Snapshot
from gamead_cli.tui.widgets import (
    AuditPanel,
    AutoscalerLine,
    Banner,
    ConfirmScreen,
    DetailScreen,
    DlqPanel,
    DlqTable,
    FilterBar,
    FilterTable,
    HelpScreen,
    MetricsPanel,
    NodesPanel,
    NodesTable,
    QueuePanel,
    SummaryBar,
)
from gamead_core.errors import ApiClientError, ApiUnreachable, NotFound

log = logging.getLogger(__name__)

#: one-second samples asked of ``/v1/stats`` for the sparklines (five minutes)
HISTORY_POINTS = 300
#: the DLQ page is re-read at least every this many refreshes (and whenever its size changes)
DLQ_EVERY = 5
_DASHBOARD_ACTIONS = frozenset({"help", "filter", "replay", "purge", "pause"})
#: actions that change the service: absent from a read-only dashboard
_WRITE_ACTIONS = frozenset({"replay", "purge"})
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
    ENABLE_COMMAND_PALETTE = False  # the footer's room goes to the dashboard's own keys
    #: in footer order: quit and help first, so a narrow footer still shows them
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("slash", "filter", "filter", key_display="/"),
        Binding("r", "replay", "replay"),
        Binding("x", "purge", "purge"),
        Binding("p", "pause", "pause"),
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

    def __init__(self, source: DataSource, *, refresh: float = 1.0, history: int = HISTORY_POINTS,
                 readonly: bool = False) -> None:
        super().__init__()
        self.source = source
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

    def compose(self) -> ComposeResult:
        yield SummaryBar(self.source.api_url, id="summary").data_bind(
            DashboardApp.stats, DashboardApp.paused, DashboardApp.readonly)
        yield Banner(id="banner").data_bind(message=DashboardApp.error)
        with Horizontal(id="top-row"):
            yield QueuePanel(history_seconds=self.history, id="queue").data_bind(DashboardApp.stats)
            yield MetricsPanel(id="metrics").data_bind(DashboardApp.stats)
        yield NodesPanel(id="nodes").data_bind(DashboardApp.nodes)
        yield DlqPanel(id="dlq").data_bind(DashboardApp.stats, DashboardApp.dlq, DashboardApp.dlq_error)
        yield AuditPanel(id="audit").data_bind(DashboardApp.audit, DashboardApp.audit_error)
        yield FilterBar(placeholder="filter rows (enter keeps, escape clears)", id="filter")
        yield AutoscalerLine(id="autoscaler").data_bind(DashboardApp.stats)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(NodesTable).focus()
        self.fit(self.size)
        self.set_interval(self.refresh_seconds, self.tick)
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
        try:
            self._ticks += 1
            forced = self._dlq_forced
            snap = await asyncio.to_thread(
                fetch_snapshot, self.source, self.history, want_dlq=self._want_dlq, previous=self.snapshot)
            if forced:
                self._dlq_forced = False
            self.apply(snap)
            if not self._role_known:
                await self.learn_role()
        except Exception as exc:  # noqa: BLE001 - any failure becomes the banner; the next tick retries
            self.failures += 1
            self._dlq_forced = True
            self.error = describe_failure(exc, self.refresh_seconds, self.failures)
            self._stale(True)
        finally:
            self._busy = False

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
        if action in _DASHBOARD_ACTIONS and isinstance(self.screen, ModalScreen):
            return False
        if action in _WRITE_ACTIONS and self.readonly:
            return False  # hidden from the footer, and the key does nothing
        return True

    def action_help(self) -> None:
        self.push_screen(HelpScreen(readonly=self.readonly))

    def action_pause(self) -> None:
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
        self._confirm_dlq("replay", "Replay {n} dead-lettered ad{s} to {their} original priority?")

    def action_purge(self) -> None:
        self._confirm_dlq("purge", "Purge {n} dead-lettered ad{s} for good? This cannot be undone.")

    def _confirm_dlq(self, verb: str, question: str) -> None:
        ids = self._dlq_selection()
        if not ids:
            self.notify(f"nothing to {verb}: select a DLQ entry (tab to the DLQ, space marks)", severity="warning")
            return
        many = len(ids) != 1
        text = question.format(n=len(ids), s="s" if many else "", their="their" if many else "its")
        shown = ", ".join(ids[:5]) + (f" … (+{len(ids) - 5})" if len(ids) > 5 else "")

        def answered(yes: bool | None) -> None:
            if yes:
                self.dlq_action(verb, ids)

        self.push_screen(ConfirmScreen(text, shown), answered)

    @work(group="dlq-action", exit_on_error=False)
    async def dlq_action(self, verb: str, ids: list[str]) -> None:
        call = self.source.replay if verb == "replay" else self.source.purge
        try:
            result = await asyncio.to_thread(call, ids)
        except Exception as exc:  # noqa: BLE001 - say so, keep running
            self.notify(f"{verb} failed: {getattr(exc, 'message', None) or exc}", severity="error", timeout=8)
            return
        done = result.get("replayed" if verb == "replay" else "purged", 0)
        extra = ""
        if verb == "replay" and (result.get("skipped") or result.get("failed")):
            extra = f" (skipped {result.get('skipped', 0)}, failed {result.get('failed', 0)})"
        past = "replayed" if verb == "replay" else "purged"
        self.notify(f"{past} {done} of {len(ids)}{extra}", severity="information", timeout=4)
        self.query_one(DlqTable).marked.clear()
        self.refresh_now(dlq=True)

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
            entry = next((e for e in (self.dlq or {}).get("items") or [] if str(e.get("id")) == entry_id), None)
        if entry is None:
            self.notify(f"DLQ entry {entry_id} is gone", severity="warning")
            return
        self.push_screen(DetailScreen(f"dead letter {entry_id}", view.details_view(entry)))
