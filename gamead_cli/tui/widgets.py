"""The dashboard's widgets. Each takes its data through reactives (bound to the app's) and redraws only
what changed; colours and layout live in ``top.tcss``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive, var
from textual.screen import ModalScreen
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from gamead_cli.tui import commands, view

log = logging.getLogger(__name__)

Row = tuple[str, Sequence[RenderableType]]


def _safe(render: Any, *args: Any, **kw: Any) -> RenderableType:
    """A renderer that cannot take the dashboard down: unexpected data shows as a note instead."""
    try:
        return render(*args, **kw)  # type: ignore[no-any-return]
    except Exception as exc:  # noqa: BLE001 - a bad payload must never end the app with a traceback
        log.debug("render failed", exc_info=True)
        return Text(f"(cannot show this data: {type(exc).__name__})", style="dim")


def literal(text: RenderableType) -> RenderableType:
    """``text`` as it must show: a ``str`` becomes a :class:`Text` that Textual never reads as markup (a filter
    ``/[/``, an error ``[link=x]y`` from the server), other renderables pass unchanged. Every string built from
    user or server data goes through here (or is a ``Text``) before a title, a ``Static`` or a table cell."""
    return Text(text) if isinstance(text, str) else text


def set_border(widget: Widget, *, title: str | None = None, subtitle: str | None = None) -> None:
    """Set ``widget``'s border title / subtitle as literal text (never markup), only when it changed."""
    for attr, value in (("title", title), ("subtitle", subtitle)):
        if value is None:
            continue
        key = f"_gamead_border_{attr}"
        if getattr(widget, key, None) != value:
            setattr(widget, key, value)
            setattr(widget, f"border_{attr}", Text(value) if value else "")


# --- one-liners -------------------------------------------------------------------------------------------


class SummaryBar(Static):
    """Header: API, nodes, workers, NATS; ``READ-ONLY`` when the dashboard offers no actions."""

    stats: reactive[Mapping[str, Any] | None] = reactive(None)
    paused: reactive[bool] = reactive(False)
    readonly: reactive[bool] = reactive(False)
    doctor: reactive[Mapping[str, Any] | None] = reactive(None)
    doctor_error: reactive[str | None] = reactive(None)
    replaying: reactive[str | None] = reactive(None)

    def __init__(self, api_url: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.api_url = api_url

    def render(self) -> RenderableType:
        compact = self.size.width < 100
        ran = self.doctor is not None or self.doctor_error is not None
        doctor = view.doctor_text(self.doctor, self.doctor_error) if ran else None
        return _safe(view.summary_text, self.stats, self.api_url, paused=self.paused,
                     compact=compact, readonly=self.readonly, doctor=doctor, replaying=self.replaying)


class JobLine(Static):
    """The replay / purge job under way (or last run): state, phase and counts, live; hidden when none."""

    job: var[Mapping[str, Any] | None] = var(None)

    def watch_job(self, job: Mapping[str, Any] | None) -> None:
        self.set_class(bool(job), "-shown")
        self.update(_safe(view.job_text, job))


class Banner(Static):
    """A loud line while the API cannot be read; hidden otherwise."""

    message: var[str | None] = var(None)

    def watch_message(self, message: str | None) -> None:
        self.set_class(message is not None, "-shown")
        self.update(Text(message or ""))


class AutoscalerLine(Static):
    stats: reactive[Mapping[str, Any] | None] = reactive(None)

    def render(self) -> RenderableType:
        return _safe(view.autoscaler_text, self.stats)


# --- queue and metrics panels ---------------------------------------------------------------------------------


class SparkText(Widget):
    """A sparkline drawn as one line of plain text (:func:`view.spark`'s characters, one colour from
    ``top.tcss``). Textual's ``Sparkline`` buckets its data with ``Fraction`` arithmetic and blends a colour
    per bar at every repaint; this widget recomputes its line only when the history or its width changed,
    and asks for a repaint (never a layout pass) only when the line it would draw changed."""

    DEFAULT_CSS = "SparkText { height: 1; }"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._history: tuple[float, ...] = ()
        self._drawn: tuple[tuple[float, ...], int, str] = ((), 0, "")

    @property
    def history(self) -> tuple[float, ...]:
        return self._history

    @history.setter
    def history(self, values: Sequence[float]) -> None:
        values = tuple(values) if len(values) > 1 else ()  # one point has no shape: no full bar
        if values != self._history:
            self._history = values
            if self._line(self.size.width) != self._drawn[2]:
                self.refresh()

    def _line(self, width: int) -> str:
        if self._drawn[:2] != (self._history, width):
            line = view.spark(self._history, width, relative=True) if width > 0 else ""
            self._drawn = (self._history, width, line)
        return self._drawn[2]

    @property
    def text(self) -> str:
        """The line as drawn at the current width."""
        return self._line(self.size.width)

    def render(self) -> RenderableType:
        return Text(self._line(self.size.width), no_wrap=True, overflow="crop")


class SparkRow(Horizontal):
    """Numbers on the left, a sparkline of their history on the right."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._text: Static = Static(classes="figures")
        self._spark = SparkText()  # no data yet: empty, not a full bar
        self._shown: tuple[Any, ...] | None = None

    def compose(self) -> ComposeResult:
        yield self._text
        yield self._spark

    @property
    def text(self) -> str:
        """The figures as shown (plain text)."""
        return str(self._text.content)

    def show(self, text: RenderableType, history: list[float], *, late: bool = False) -> None:
        key = (str(text), tuple(history), late)
        if key == self._shown:
            return
        resized = self._shown is None or len(str(text)) != len(self._shown[0])
        if self._shown is None or str(text) != self._shown[0]:
            self._text.update(literal(text), layout=resized)  # a layout pass costs far more than a repaint
        self._shown = key
        self._spark.history = history
        self.set_class(late, "-late")


class QueuePanel(Vertical, can_focus=True):
    """Pending / ack pending / redelivered / oldest age per level, with a depth sparkline each. ↑ ↓ choose a
    level, enter drills down into its ads."""

    BORDER_TITLE = "queue"
    BINDINGS = [Binding("up", "move(-1)", show=False), Binding("down", "move(1)", show=False),
                Binding("enter", "choose", "ads of the level", show=False)]
    stats: var[Mapping[str, Any] | None] = var(None)
    cursor: reactive[int] = reactive(1)

    class LevelChosen(Message):
        def __init__(self, level: int) -> None:
            super().__init__()
            self.level = level

    def action_move(self, step: int) -> None:
        self.cursor = min(max(view.LEVELS), max(min(view.LEVELS), self.cursor + step))

    def action_choose(self) -> None:
        self.post_message(self.LevelChosen(self.cursor))

    def watch_cursor(self, cursor: int) -> None:
        for level in view.LEVELS:
            self.query_one(f"#level-{level}").set_class(level == cursor, "-cursor")

    def on_mount(self) -> None:
        self.watch_cursor(self.cursor)

    def __init__(self, *, history_seconds: int = 300, **kw: Any) -> None:
        super().__init__(**kw)
        self._history = history_seconds
        set_border(self, title=f"queue · depth: last {view.span(history_seconds)}")

    def compose(self) -> ComposeResult:
        yield Static(view.LEVEL_HEADER, classes="header")
        for level in view.LEVELS:
            yield SparkRow(id=f"level-{level}", classes="level")

    def watch_stats(self, stats: Mapping[str, Any] | None) -> None:
        self._show(stats)

    def on_resize(self) -> None:
        self._show(self.stats)

    def _show(self, stats: Mapping[str, Any] | None) -> None:
        compact = 0 < self.size.width < view.LEVEL_COMPACT_BELOW
        header = self.query_one(".header", Static)
        text = view.level_header(compact=compact)
        if str(header.content) != text:
            header.update(literal(text))
        set_border(self, title=view.queue_title(stats, self._history, compact=compact))
        rows = view.level_rows(stats)
        for row in rows:
            self.query_one(f"#level-{row.priority}", SparkRow).show(
                view.level_text(row, compact=compact), row.history, late=row.late)
        late = [r.priority for r in rows if r.late]
        subtitle = f"late: P{', P'.join(map(str, late))}" if late else ""
        set_border(self, subtitle=subtitle)
        self.set_class(bool(late), "-late")


class MetricsPanel(Vertical, can_focus=True):
    """Submitted / completed ads, retried attempts, dead-lettered ads per second and queue-wait / processing p95, with sparklines."""

    BORDER_TITLE = "throughput & latency · last minute"
    stats: var[Mapping[str, Any] | None] = var(None)

    #: the rows with a note (their percentiles): a fixed-width column, so a new figure never re-lays out
    NOTED = frozenset({"wait", "proc"})

    def compose(self) -> ComposeResult:
        for key in ("submitted", "completed", "retried", "dead", "wait", "proc", "inflight"):
            with Horizontal(id=f"metric-{key}", classes="metric"):
                yield SparkRow(classes="spark-row")
                if key in self.NOTED:
                    yield Static(classes="note")

    def watch_stats(self, stats: Mapping[str, Any] | None) -> None:
        if stats is not None:  # the windows the API's figures are really over (a restarted API: 11 s)
            self.border_title = view.metrics_title(stats)
        for m in view.metric_rows(stats):
            row = self.query_one(f"#metric-{m.key}")
            row.query_one(SparkRow).show(f"{m.label:<9} {m.value:>8}", m.history,
                                          late=m.key == "dead" and any(m.history))
            if m.key not in self.NOTED:
                continue
            note = row.query_one(".note", Static)
            if str(note.content) != m.note:
                note.update(Text(m.note, style="dim", overflow="ellipsis", no_wrap=True), layout=False)


# --- tables ------------------------------------------------------------------------------------------------------


class FilterTable(DataTable[RenderableType]):
    """A row-cursor table that keeps its cursor across refreshes and hides rows not matching ``filter_text``."""

    filter_text: reactive[str] = reactive("")

    def __init__(self, columns: Sequence[str], **kw: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self._rows: list[Row] = []
        self._shown: list[tuple[str, tuple[RenderableType, ...]]] = []
        self._column_keys = self.add_columns(*columns)

    def set_rows(self, rows: Iterable[Row]) -> None:
        self._rows = list(rows)
        self._redraw()

    def watch_filter_text(self) -> None:
        self._redraw()

    def visible_rows(self) -> list[Row]:
        """The rows whose text contains the filter (case-insensitive); ``!text``: the rows that do not."""
        needle = self.filter_text.strip().lower()
        invert = needle.startswith("!")
        needle = needle[1:].strip() if invert else needle
        if not needle:
            return self._rows
        return [r for r in self._rows if (needle in " ".join([r[0], *map(str, r[1])]).lower()) != invert]

    def decorate(self, key: str, cells: Sequence[RenderableType]) -> Sequence[RenderableType]:
        return cells

    def _redraw(self) -> None:
        panel = self.parent if isinstance(self.parent, Widget) else self
        subtitle = f"filter: {self.filter_text}" if self.filter_text else ""
        set_border(panel, subtitle=subtitle)  # the filter typed is shown as typed, never read as markup
        rows = [(k, tuple(self.decorate(k, cells))) for k, cells in self.visible_rows()]
        if [k for k, _ in rows] == [k for k, _ in self._shown]:
            self._update_cells(rows)  # same rows: repaint changed cells only (no layout pass)
        else:
            self._rebuild(rows)
        self._shown = rows

    def _update_cells(self, rows: list[tuple[str, tuple[RenderableType, ...]]]) -> None:
        for (key, cells), (_, before) in zip(rows, self._shown):
            for column, new, old in zip(self._column_keys, cells, before):
                if _signature(new) != _signature(old):
                    width = new.cell_len if isinstance(new, Text) else len(str(new))
                    self.update_cell(key, column, new, update_width=width > self.columns[column].content_width)

    def _rebuild(self, rows: list[tuple[str, tuple[RenderableType, ...]]]) -> None:
        keep = self.current_key()
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        if keep is not None and keep in {k for k, _ in rows}:
            self.move_cursor(row=self.get_row_index(keep), animate=False)

    def current_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:  # noqa: BLE001 - an empty or shrinking table has no current row
            return None


class NodesTable(FilterTable):
    """The nodes; ``l`` follows the log of the node under the cursor (``:logs WORKER``)."""

    BINDINGS = [Binding("l", "logs", "logs", show=False)]

    def action_logs(self) -> None:
        key = self.current_key()
        if key is not None:
            self.app.open_logs([key])  # type: ignore[attr-defined]

    def __init__(self, **kw: Any) -> None:
        super().__init__(view.NODE_COLUMNS, **kw)


class DlqTable(FilterTable):
    """DLQ entries; ``space`` marks entries for replay / purge (none marked = the current one)."""

    BINDINGS = [Binding("space", "toggle_mark", "mark", show=True),
                Binding("ctrl+a", "mark_all", "mark all", show=False)]

    def __init__(self, **kw: Any) -> None:
        super().__init__(("✓", *view.DLQ_COLUMNS), **kw)
        self.marked: set[str] = set()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Marking is for replay / purge: hidden in a read-only dashboard."""
        if action in ("toggle_mark", "mark_all") and getattr(self.app, "readonly", False):
            return False
        return True

    def decorate(self, key: str, cells: Sequence[RenderableType]) -> Sequence[RenderableType]:
        mark = Text("✓", style="bold yellow") if key in self.marked else Text(" ")
        return (mark, *cells)

    def set_rows(self, rows: Iterable[Row]) -> None:
        rows = list(rows)
        self.marked &= {k for k, _ in rows}
        super().set_rows(rows)

    def action_toggle_mark(self) -> None:
        key = self.current_key()
        if key is None:
            return
        self.marked ^= {key}
        self._redraw()

    def action_mark_all(self) -> None:
        """Mark every row the filter shows (all rows without a filter); again when all are marked: unmark."""
        visible = {k for k, _ in self.visible_rows()}
        self.marked = self.marked - visible if visible <= self.marked else self.marked | visible
        self._redraw()

    def selection(self) -> list[str]:
        """Marked entries in table order, else the entry under the cursor."""
        visible = [k for k, _ in self.visible_rows()]
        marked = [k for k in visible if k in self.marked]
        if marked:
            return marked
        current = self.current_key()
        return [current] if current else []


class NodesPanel(Vertical):
    BORDER_TITLE = "nodes"
    nodes: var[Sequence[Mapping[str, Any]]] = var(())

    def compose(self) -> ComposeResult:
        yield NodesTable(id="nodes-table")

    def watch_nodes(self, nodes: Sequence[Mapping[str, Any]]) -> None:
        self.query_one(NodesTable).set_rows((str(n.get("id")), view.node_row(n)) for n in nodes)
        workers = [n for n in nodes if n.get("role") == "worker" and n.get("state") != "gone"]
        counts = {w: sum(1 for n in nodes if n.get("state") == w) for w in ("late", "stuck", "gone")}
        title = f"nodes · {len(workers)} workers" + "".join(f" · {c} {w}" for w, c in counts.items() if c)
        set_border(self, title=title)
        self.set_class(bool(counts["stuck"] or counts["gone"]), "-alert")


class DlqPanel(Vertical):
    BORDER_TITLE = "dead letters"
    stats: var[Mapping[str, Any] | None] = var(None)
    dlq: var[Mapping[str, Any] | None] = var(None)
    dlq_error: var[str | None] = var(None)

    def compose(self) -> ComposeResult:
        yield Static(id="dlq-summary")
        yield DlqTable(id="dlq-table")

    def _summary(self) -> None:
        summary = _safe(view.dlq_summary, self.stats, self.dlq, self.dlq_error)
        self.query_one("#dlq-summary", Static).update(summary, layout=False)  # one line, fixed height
        size = ((self.stats or {}).get("dlq") or {}).get("size")
        self.set_class(bool(size), "-alert")

    def _table(self) -> None:
        items = (self.dlq or {}).get("items") or []
        self.query_one(DlqTable).set_rows(
            (view.dlq_id(e), view.dlq_row(e)) for e in items if isinstance(e, Mapping))

    def watch_stats(self) -> None:
        self._summary()

    def watch_dlq(self) -> None:
        self._summary()
        self._table()

    def watch_dlq_error(self) -> None:
        self._summary()


class AuditPanel(Vertical):
    """The last operator actions (``GET /v1/audit``): time, who, action, what, how many ads, outcome."""

    BORDER_TITLE = "audit · last operator actions"
    audit: var[Mapping[str, Any] | None] = var(None)
    audit_error: var[str | None] = var(None)

    def compose(self) -> ComposeResult:
        yield Static(id="audit-body")

    def _show(self) -> None:
        self.query_one("#audit-body", Static).update(_safe(view.audit_table, self.audit, self.audit_error))
        refused = any(r.get("outcome") in ("refused", "failed") for r in (self.audit or {}).get("items") or []
                      if isinstance(r, Mapping))
        self.set_class(refused, "-alert")

    def watch_audit(self) -> None:
        self._show()

    def watch_audit_error(self) -> None:
        self._show()


class FilterBar(Input):
    """``/``: the filter of the table that had focus. Enter keeps it, Escape clears it."""

    BINDINGS = [Binding("escape", "clear", "clear filter", show=False)]

    def action_clear(self) -> None:
        self.value = ""
        self.post_message(self.Submitted(self, ""))


def _signature(cell: RenderableType) -> tuple[str, str]:
    return str(cell), str(getattr(cell, "style", ""))


# --- modal screens ------------------------------------------------------------------------------------------------


#: the help, one line per key, each under 60 columns so it fits a 60-column terminal without wrapping
HELP_KEYS: tuple[tuple[str, str], ...] = (
    ("tab", "next panel (shift+tab: previous)"),
    ("↑ ↓", "move in a table"),
    ("enter", "details; on a queue level: its oldest ads"),
    ("escape", "back one screen (the breadcrumb says where)"),
    ("/", "filter the table (!text inverts; escape clears)"),
    (":", "command line (tab completes; commands below)"),
    ("ctrl+p", "command palette: the same commands"),
    ("l", "on a node: follow its log (:logs WORKER)"),
    ("space", "mark a DLQ entry (several can be marked)"),
    ("ctrl+a", "mark every DLQ entry the filter shows"),
    ("r", "replay the marked entries (or the current one)"),
    ("x", "purge the marked entries (or the current one)"),
    ("p", "pause / resume refreshing"),
    ("?", "this help"),
    ("q", "quit"),
    ("ctrl+c", "quit too (exit code 130)"),
)
_ACTION_KEYS = frozenset({"space", "ctrl+a", "r", "x"})
HELP_NOTES = """\
r and x ask you to type the number of entries first; one
server-side job acts on them all, its progress shows live.
A queue row turns red, its OLDEST marked !, when its oldest
ad waited past MAX, the level's promised wait (its aging
horizon: (level − 1) × queue.aging_step, one step for P1):
the level is late.
Figures are per second or percentiles over the last minute
(less just after the API started: the panel's title says);
ack pending and the queue are now; sparklines show the last
5 minutes. Node states: [green]ok[/] busy · [cyan]idle[/] no work ·
[yellow]draining[/] stopping · [yellow]late[/] heartbeat 2.5 beats overdue ·
[bold red]stuck[/] holds ads, finished none within its task timeout,
or no heartbeat for registry.ttl · [bold red]gone[/] its registry entry
expired (listed a while; it may still hold ads). UP: since
its process started; COMPLETED and FAILED count from then."""


#: the keys of a replayed recording (``gamead top --replay FILE``)
HELP_REPLAY_KEYS: tuple[tuple[str, str], ...] = (
    ("p", "pause / play (at the end: from the start)"),
    (".", "pause and step one snapshot forward"),
    (",", "pause and step one snapshot back"),
    ("+", "play faster (up to ×16)"),
    ("-", "play slower (down to ×0.25)"),
)


def help_text(*, readonly: bool = False, replay: bool = False) -> Text:
    """The help: keys (without the actions in a read-only dashboard), then what the colours mean."""
    text = Text.from_markup("[b]gamead top[/b] — the queue, the nodes, the dead letters\n\n")
    if readonly:  # first: a short terminal shows the top of the help
        text.append("read-only: actions are off (--readonly, or a token\nthat may not act)\n\n", style="bold magenta")
    for key, meaning in HELP_KEYS:
        if readonly and key in _ACTION_KEYS:
            continue
        text.append(f"  {key:<6} ", style="bold")
        text.append(f"{meaning}\n")
    if replay:
        text.append("\nreplaying a recording\n", style="bold")
        for key, meaning in HELP_REPLAY_KEYS:
            text.append(f"  {key:<6} ", style="bold")
            text.append(f"{meaning}\n")
    text.append("\ncommands (: or ctrl+p)\n", style="bold")
    for spec in commands.COMMANDS:
        if readonly and spec.acts:
            continue
        text.append(f"  :{spec.usage:<21} ", style="bold")
        text.append(f"{spec.meaning}\n")
    text.append("\n")
    text.append_text(Text.from_markup(HELP_NOTES if not readonly else HELP_NOTES.split("\n", 1)[1]))
    return text


class HelpScreen(ModalScreen[None]):
    """The keys and what the colours mean. The hint to close is docked: always on screen, even at 60×20."""

    BINDINGS = [Binding("escape,q,question_mark,enter", "dismiss", "close")]

    def __init__(self, *, readonly: bool = False, replay: bool = False) -> None:
        super().__init__()
        self.readonly = readonly
        self.replay = replay

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("press escape to close", classes="hint")
            with VerticalScroll(id="help-scroll"):
                yield Static(help_text(readonly=self.readonly, replay=self.replay), id="help-text")


class DetailScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter,q", "dismiss", "close")]

    def __init__(self, title: str, body: RenderableType) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Static("escape to close", classes="hint")
            yield Static(Text(self.title_text, style="bold"), id="detail-title")
            with VerticalScroll():
                yield Static(self.body, id="detail-body")
