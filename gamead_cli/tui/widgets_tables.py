"""The dashboard's tables and their panels: a row-cursor table that keeps its cursor and filters its rows, the
nodes (``l`` follows a node's log), the dead letters (``space`` marks entries for replay / purge), the audit
trail, and the filter bar. Colours and layout live in ``top.tcss``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive, var
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from gamead_cli.cell_text import clip_cells
from gamead_cli.fitted import FittedTable
from gamead_cli.formats import TIME_ZONE
from gamead_cli.tui import view_audit, view_header, view_tables
from gamead_cli.tui.widgets import safe_render, set_border

Row = tuple[str, Sequence[RenderableType]]


class FilterTable(DataTable[RenderableType]):
    """A row-cursor table that keeps its cursor across refreshes and hides rows not matching ``filter_text``.

    It fits its width as the ``--once`` tables do (:meth:`gamead_cli.fitted.FittedTable.layout`, regress40 F4): whole
    columns go, in the order ``drop`` then from the right (the ``ids`` never), and the ``flex`` column (default: the
    last) takes what is left, its cells ending in ``…``; a label or a figure is never cut at the panel's edge (Textual
    drew every column at its natural width: at 80x40 the nodes header ended in ``HEARTB``, ``0.9s ago`` showed as
    ``0.9s``). Laid out again when its width, or the widest cell of a column, changes."""

    filter_text: reactive[str] = reactive("")

    def __init__(self, columns: Sequence[str], *, flex: str | None = None, drop: Sequence[str] = (),
                 ids: Sequence[str] | None = None, **kw: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self._labels = tuple(columns)
        self._fit: dict[str, Any] = {"flex": flex or self._labels[-1], "drop": tuple(drop), "ids": ids}
        self._rows: list[Row] = []
        self._shown: list[tuple[str, tuple[RenderableType, ...]]] = []
        self._layout: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
        self._column_keys: list[Any] = []

    def set_rows(self, rows: Iterable[Row]) -> None:
        self._rows = list(rows)
        self._redraw()

    def watch_filter_text(self) -> None:
        self._redraw()

    def on_resize(self) -> None:
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

    def fitted_layout(self, rows: Sequence[Sequence[RenderableType]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The columns shown and their widths for ``rows`` at this table's width: the room left of the vertical
        scrollbar (when the rows overflow the height, or before the first layout), less the cell padding DataTable
        adds on both sides of each column (FittedTable counts two cells between columns). Before the first layout
        (width 0): every column."""
        region = self.content_region
        scrolls = len(rows) + int(self.show_header) > region.height
        room = region.width - (self.styles.scrollbar_size_vertical if scrolls else 0)
        width = room - 2 * self.cell_padding if room > 0 else 10_000
        return FittedTable(self._labels, rows, **self._fit).layout(width)

    def _redraw(self) -> None:
        panel = self.parent if isinstance(self.parent, Widget) else self
        if isinstance(panel, FilteredPanel):
            panel.show_filter(self.filter_text)
        else:  # the filter typed is shown as typed, never read as markup
            set_border(panel, subtitle=f"filter: {self.filter_text}" if self.filter_text else "")
        rows = [(k, tuple(self.decorate(k, cells))) for k, cells in self.visible_rows()]
        layout = self.fitted_layout([cells for _, cells in rows])
        keep = self.current_key()
        if layout != self._layout:
            self._set_columns(layout)
        rows = [(k, self._project(cells)) for k, cells in rows]
        if self._shown and [k for k, _ in rows] == [k for k, _ in self._shown]:
            self._update_cells(rows)  # same rows: repaint changed cells only (no layout pass)
        else:
            self._rebuild(rows, keep)
        self._shown = rows
        self._say_below()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._say_below()

    def rows_below(self) -> int:
        """The rows shown (the filter's) that lie below the viewport; 0 before the first layout (height 0)."""
        height = self.content_region.height
        return max(0, len(self._shown) - (height - int(self.show_header)) - round(self.scroll_y)) if height else 0

    def _say_below(self) -> None:
        if isinstance(self.parent, FilteredPanel):
            self.parent.show_below(self.rows_below())

    def _set_columns(self, layout: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
        self.clear(columns=True)
        self._column_keys = [self.add_column(self._labels[i], width=w, key=f"c{i}") for i, w in zip(*layout)]
        self._layout, self._shown = layout, []

    def _project(self, cells: Sequence[RenderableType]) -> tuple[RenderableType, ...]:
        """The cells of the columns shown; the flex column's cut to its width with ``…``."""
        flex = self._labels.index(self._fit["flex"])
        return tuple(clip_cells(cells[i], w) if i == flex and isinstance(cells[i], (str, Text)) else cells[i]
                     for i, w in zip(*self._layout))

    def _update_cells(self, rows: list[tuple[str, tuple[RenderableType, ...]]]) -> None:
        for (key, cells), (_, before) in zip(rows, self._shown):
            for column, new, old in zip(self._column_keys, cells, before):
                if _signature(new) != _signature(old):
                    self.update_cell(key, column, new)  # the widths are the layout's: it fits every cell shown

    def _rebuild(self, rows: list[tuple[str, tuple[RenderableType, ...]]], keep: str | None) -> None:
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
        super().__init__(view_tables.NODE_COLUMNS, flex="LAST ERROR", drop=view_tables.NODE_DROP, **kw)


class DlqTable(FilterTable):
    """DLQ entries; ``space`` marks entries for replay / purge (none marked = the current one)."""

    BINDINGS = [Binding("space", "toggle_mark", "mark", show=True),
                Binding("ctrl+a", "mark_all", "mark all", show=False)]

    def __init__(self, **kw: Any) -> None:
        super().__init__(("✓", *view_tables.DLQ_COLUMNS), flex="MESSAGE", drop=view_tables.DLQ_DROP,
                         ids=("✓", "ID"), **kw)
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


class FilteredPanel(Vertical):
    """A panel of one :class:`FilterTable`: its title in the top border and the table's filter in effect in the
    bottom one, or after the title when it has no bottom border (a short terminal's panels: 80x24), whole or not
    at all (:func:`gamead_cli.tui.view_tables.border_labels`). The title ends ``· 1 more ↓`` while rows lie below
    the table's viewport (regress42: at 80x24 the nodes panel showed 2 of 3 nodes, only a scrollbar saying so)."""

    #: cells of a border a label cannot use: the corners, the rules beside the label and its spaces
    LABEL_FRAME = 6

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._title = str(self.BORDER_TITLE)
        self._filter = ""
        self._below = 0  #: the table's rows below its viewport

    def set_title(self, title: str) -> None:
        self._title = title
        self._labels()

    def show_filter(self, filter_text: str) -> None:
        self._filter = filter_text
        self._labels()

    def show_below(self, rows: int) -> None:
        if rows != self._below:
            self._below = rows
            self._labels()

    def on_resize(self) -> None:
        self._labels()  # a short terminal takes the bottom border away (top.tcss), a narrow one the room

    def _labels(self) -> None:
        bottom = self.styles.border_bottom[0] not in ("", "none", "hidden")
        room = self.outer_size.width - self.LABEL_FRAME if self.outer_size.width > 0 else 10_000
        more = f" · {self._below} more ↓" if self._below else ""
        title, subtitle = view_tables.border_labels(self._title + more, self._filter, room, bottom=bottom)
        set_border(self, title=title, subtitle=subtitle)


class NodesPanel(FilteredPanel):
    BORDER_TITLE = "nodes"
    nodes: var[Sequence[Mapping[str, Any]] | None] = var(None)

    def compose(self) -> ComposeResult:
        yield NodesTable(id="nodes-table")

    def watch_nodes(self, nodes: Sequence[Mapping[str, Any]] | None) -> None:
        """The rows and the title's counts of ``/v1/workers``' items; ``nodes`` alone while none was read (None):
        ``0 workers`` before the first answer claimed a count nothing had made (tui42 F5)."""
        self.query_one(NodesTable).set_rows((str(n.get("id")), view_tables.node_row(n)) for n in nodes or ())
        if nodes is None:
            self.set_title(str(self.BORDER_TITLE))
            return
        tally = view_header.node_tally(nodes)  # the header's counts too (tui42 F2)
        counts = {w: tally[w] for w in view_tables.NOTED_STATES}
        title = f"nodes · {tally['workers']} workers" + "".join(f" · {c} {w}" for w, c in counts.items() if c)
        self.set_title(title)
        self.set_class(bool(counts["stuck"] or counts["gone"]), "-alert")


class DlqPanel(FilteredPanel):
    BORDER_TITLE = "dead letters"
    stats: var[Mapping[str, Any] | None] = var(None)
    dlq: var[Mapping[str, Any] | None] = var(None)
    dlq_error: var[str | None] = var(None)

    def compose(self) -> ComposeResult:
        yield Static(id="dlq-summary")
        yield DlqTable(id="dlq-table")

    def _summary(self) -> None:
        summary = safe_render(view_tables.dlq_summary, self.stats, self.dlq, self.dlq_error)
        self.query_one("#dlq-summary", Static).update(summary, layout=False)  # one line, fixed height
        size = ((self.stats or {}).get("dlq") or {}).get("size")
        self.set_class(bool(size), "-alert")

    def _table(self) -> None:
        items = (self.dlq or {}).get("items") or []
        table = self.query_one(DlqTable)
        table.set_rows((view_tables.dlq_id(e), view_tables.dlq_row(e)) for e in items if isinstance(e, Mapping))
        table.display = bool(items) or table.has_focus  # no header under "0 entries" (newcomer46); focus kept

    def watch_stats(self) -> None:
        self._summary()

    def watch_dlq(self) -> None:
        self.set_title(view_tables.dlq_title(self.dlq))  # "as of 12s ago" for a page the API kept (outage38)
        self._summary()
        self._table()

    def watch_dlq_error(self) -> None:
        self._summary()


class AuditPanel(Vertical):
    """The last operator actions (``GET /v1/audit``): time, who, action, what, how many ads, outcome."""

    BORDER_TITLE = f"audit · last operator actions · times {TIME_ZONE}"  # no header row here (newcomer46)
    audit: var[Mapping[str, Any] | None] = var(None)
    audit_error: var[str | None] = var(None)

    def compose(self) -> ComposeResult:
        yield Static(id="audit-body")

    def _show(self) -> None:
        self.query_one("#audit-body", Static).update(safe_render(view_audit.audit_table, self.audit, self.audit_error))
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
