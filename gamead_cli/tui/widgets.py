"""The dashboard's header lines and its queue and metrics panels, with the helpers every widget shares (a render
that cannot fail, text never read as markup, border titles). Each takes its data through reactives (bound to the
app's) and redraws only what changed; colours and layout live in ``top.tcss``. The tables are in
``widgets_tables``, the help and detail dialogs in ``widgets_help``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive, var
from textual.widget import Widget
from textual.widgets import Static

from gamead_cli.tui import view_figures, view_header, view_queue

log = logging.getLogger(__name__)


def safe_render(render: Any, *args: Any, **kw: Any) -> RenderableType:
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
    nodes: reactive[Sequence[Mapping[str, Any]] | None] = reactive(None)  #: the nodes table's (view_header.node_tally)

    def __init__(self, api_url: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.api_url = api_url

    def render(self) -> RenderableType:
        compact = self.size.width < view_header.HEADER_COMPACT_BELOW
        ran = self.doctor is not None or self.doctor_error is not None
        doctor = view_header.doctor_text(self.doctor, self.doctor_error) if ran else None
        return safe_render(view_header.summary_text, self.stats, self.api_url, paused=self.paused,
                           compact=compact, readonly=self.readonly, doctor=doctor, replaying=self.replaying,
                           width=self.size.width, nodes=self.nodes)


class JobLine(Static):
    """The replay / purge job under way (or last run): state, phase and counts, live; hidden when none."""

    job: var[Mapping[str, Any] | None] = var(None)

    def watch_job(self, job: Mapping[str, Any] | None) -> None:
        self.set_class(bool(job), "-shown")
        self.refresh()

    def render(self) -> RenderableType:
        return safe_render(view_header.job_text, self.job, width=self.size.width)


class Banner(Static):
    """A loud line while the API cannot be read; hidden otherwise."""

    message: var[str | None] = var(None)

    def watch_message(self, message: str | None) -> None:
        self.set_class(message is not None, "-shown")
        self.update(Text(message or ""))


class AutoscalerLine(Static):
    stats: reactive[Mapping[str, Any] | None] = reactive(None)

    def render(self) -> RenderableType:
        """The decision on its one row: a longer one ends in ``…`` at the edge, never cut off unmarked mid-sentence
        (regress42 F3: ``… arriving 0.25 ads/s at 497.6 ads/s per`` at 80 columns; ``gamead scale status`` has it
        whole)."""
        shown = safe_render(view_header.autoscaler_text, self.stats)
        if isinstance(shown, Text) and (width := self.content_size.width) > 0:
            shown.truncate(width, overflow="ellipsis")
        return shown


# --- queue and metrics panels ---------------------------------------------------------------------------------


class SparkText(Widget):
    """A sparkline drawn as one line of plain text (:func:`view_figures.spark`'s characters, one colour from
    ``top.tcss``). Textual's ``Sparkline`` buckets its data with ``Fraction`` arithmetic and blends a colour
    per bar at every repaint; this widget recomputes its line only when the history or its width changed,
    and asks for a repaint (never a layout pass) only when the line it would draw changed."""

    DEFAULT_CSS = "SparkText { height: 1; }"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._history: tuple[float | None, ...] = ()
        self._drawn: tuple[tuple[float | None, ...], int, str] = ((), 0, "")

    @property
    def history(self) -> tuple[float | None, ...]:
        return self._history

    @history.setter
    def history(self, values: Sequence[float | None]) -> None:
        values = tuple(values) if len(values) > 1 else ()  # one point has no shape: no full bar
        if values != self._history:
            drawn = self._drawn[2]  # before _line, which stores the new line (compared with itself: never redrawn)
            self._history = values
            if self._line(self.size.width) != drawn:
                self.refresh()

    def _line(self, width: int) -> str:
        if self._drawn[:2] != (self._history, width):
            line = view_figures.spark(self._history, width, relative=True) if width > 0 else ""
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
        self.cursor = min(max(view_queue.LEVELS), max(min(view_queue.LEVELS), self.cursor + step))

    def action_choose(self) -> None:
        self.post_message(self.LevelChosen(self.cursor))

    def watch_cursor(self, cursor: int) -> None:
        for level in view_queue.LEVELS:
            self.query_one(f"#level-{level}").set_class(level == cursor, "-cursor")

    def on_mount(self) -> None:
        self.watch_cursor(self.cursor)

    def __init__(self, *, history_seconds: int = 300, **kw: Any) -> None:
        super().__init__(**kw)
        self._history = history_seconds
        set_border(self, title=f"queue · {view_queue.depth_words(history_seconds)}")

    def compose(self) -> ComposeResult:
        yield Static(view_queue.LEVEL_HEADER, classes="header")
        for level in view_queue.LEVELS:
            yield SparkRow(id=f"level-{level}", classes="level")

    def watch_stats(self, stats: Mapping[str, Any] | None) -> None:
        self._show(stats)

    def on_resize(self) -> None:
        self._show(self.stats)

    def _show(self, stats: Mapping[str, Any] | None) -> None:
        compact = 0 < self.size.width < view_queue.LEVEL_COMPACT_BELOW
        header = self.query_one(".header", Static)
        text = view_queue.level_header(compact=compact)
        if str(header.content) != text:
            header.update(literal(text))
        # how far back the answer's sparklines reach, as ``--once`` says it (less than asked right after a start)
        reach = self._history if stats is None else view_queue.history_span(stats)
        set_border(self, title=view_queue.queue_title(stats, reach, compact=compact))
        rows = view_queue.level_rows(stats)
        for row in rows:
            self.query_one(f"#level-{row.priority}", SparkRow).show(
                view_queue.level_text(row, compact=compact), row.history, late=row.late)
        late = [r.priority for r in rows if r.late]
        # a narrow panel's title has no room for the depth's reach: its bottom border says it, in the same words
        said = [f"late: P{', P'.join(map(str, late))}" if late else "",
                view_queue.depth_words(reach) if compact else ""]
        subtitle = " · ".join(filter(None, said))
        set_border(self, subtitle=subtitle)
        self.set_class(bool(late), "-late")


class MetricsPanel(Vertical, can_focus=True):
    """Submitted / completed ads, retried attempts, dead-lettered ads per second, queue-wait / processing p95 and
    the ads in flight (ack pending), one row each with a sparkline."""

    BORDER_TITLE = "throughput & latency · last minute"
    stats: var[Mapping[str, Any] | None] = var(None)

    #: the rows with a note (their percentiles): a fixed-width column, so a new figure never re-lays out
    NOTED = frozenset({"wait", "proc"})

    #: the rows, top to bottom (:func:`view_queue.metric_rows`' keys)
    ROWS = ("submitted", "completed", "retried", "dead", "wait", "proc", "inflight")

    def compose(self) -> ComposeResult:
        for key in self.ROWS:
            with Horizontal(id=f"metric-{key}", classes="metric"):
                yield SparkRow(classes="spark-row")
                if key in self.NOTED:
                    yield Static(classes="note")

    #: cells of a border the title cannot use: the corners, the rules beside the title and its spaces
    TITLE_FRAME = 6

    def on_resize(self) -> None:
        self.watch_stats(self.stats)

    def watch_stats(self, stats: Mapping[str, Any] | None) -> None:
        """Show ``stats``' rates, latencies and ack pending, one row each, under a title with the windows the API's
        figures are really over (a restarted API: 11 s), ending ``· N more ↓`` while N rows lie below the panel's
        lines (as the nodes and DLQ panels' titles say: tui43b, ``ack pending`` hidden with nothing saying so)."""
        lines = self.size.height  # inside the border
        below = len(self.ROWS) - lines if 0 < lines < len(self.ROWS) else 0
        more = f" · {below} more ↓" if below else ""
        outer = self.outer_size.width  # the border's own width (``size``: inside it)
        room = outer - self.TITLE_FRAME - len(more) if outer > 0 else None
        base = view_queue.metrics_title(stats, room) if stats is not None else str(self.BORDER_TITLE)
        set_border(self, title=base + more)
        for m in view_queue.metric_rows(stats):
            row = self.query_one(f"#metric-{m.key}")
            row.query_one(SparkRow).show(view_queue.metric_line(m), m.history, late=m.key == "dead" and any(m.history))
            if m.key not in self.NOTED:
                continue
            note = row.query_one(".note", Static)
            if str(note.content) != m.note:
                note.update(Text(m.note, style="dim", overflow="ellipsis", no_wrap=True), layout=False)
