"""The one table of the CLI's lists (``ads list``, ``dlq list``, ``dlq jobs``, ``workers``, ``top --once``): it fits
the terminal's width by leaving out whole columns, as k9s does, and never cuts a label or an id. A cell's control
and invisible format characters show escaped (:func:`gamead_core.safe_text.shown`), whoever built the cell; cells
are measured as the console's encoding writes them and cut only between escapes (:mod:`gamead_cli.cell_text`).

An operator copies ids out of these tables: an id cut to ``01m87v538ce744cfgethv…`` or folded across two lines
cannot be pasted. So a table's id columns (``ID``, ``JOB``) always keep their whole width on one line, and the
columns that give way as the terminal narrows are, in order: those nothing in any row fills, the table's own
``drop`` order, then every other column from the right (the flex column among them). Only a terminal narrower
than the ids themselves folds an id (whole, on two lines) rather than cutting it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from gamead_cli.cell_text import clip_cells, folded_cell
from gamead_core.safe_text import shown

FLEX_MIN = 4  #: fewest cells the flex column is drawn in
ID_COLUMNS = ("ID", "JOB")  #: the labels of id columns, by default (:class:`FittedTable` ``ids``)


def _shown_cell(cell: RenderableType) -> RenderableType:
    """``cell`` with any character that does not show as itself escaped (:func:`gamead_core.safe_text.shown`):
    a ``str`` or a one-style :class:`Text` (a styled cell keeps its style; its spans, if any, are dropped only
    when something had to be escaped). Other renderables pass as they are."""
    if isinstance(cell, str):
        return shown(cell)
    if isinstance(cell, Text) and (escaped := shown(cell.plain)) != cell.plain:
        return Text(escaped, style=cell.style, justify=cell.justify, overflow=cell.overflow, no_wrap=cell.no_wrap)
    return cell


class FittedTable:
    """A table that fits the width it is given without cutting a label or an id.

    Every column gets its natural width (its longest cell or label), except ``flex``, which takes what is
    left (at most ``flex_max``, at least ``flex_min`` cells, its label, or its longest cell if shorter). If even
    that does not fit, columns go, as k9s drops them: first those with nothing in any row (an empty LAST ERROR),
    then the ``drop`` columns in that order, then the others from the right; the ``ids`` columns (default: those
    labelled ``ID`` or ``JOB``) never go and are never shortened. So every label shown is whole at any width. Rich's
    own shrinking cuts every column a little (``IN-…``, ``PEND…``, ids of 20 characters that look the same) or
    removes narrow ones silently; this decides instead. ``wrap``: the flex column's cells wrap (a message) rather
    than end in "…". ``fill(width)`` draws the flex column's cells for the width it got (a sparkline) instead of
    taking them from ``rows``. Pure: the width comes from rich.
    """

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[RenderableType]], *, flex: str,
                 drop: Sequence[str] = (), flex_max: int = 40, title: str | None = None, caption: str | None = None,
                 right: Iterable[str] = (), show_header: bool = True,
                 fill: Callable[[int], Sequence[RenderableType]] | None = None, wrap: bool = False,
                 flex_min: int = FLEX_MIN, ids: Sequence[str] | None = None) -> None:
        self.show_header = show_header
        self.wrap = wrap  #: the flex column's cells wrap onto more lines (a message) instead of ending in "…"
        self.columns = list(columns)
        self.rows = [[_shown_cell(c) for c in r] for r in rows]
        self.flex, self.drop, self.flex_max, self.flex_min = flex, list(drop), flex_max, flex_min
        self.ids = [c for c in self.columns if c in (ID_COLUMNS if ids is None else ids)]
        self.title, self.caption, self.right = title, caption, set(right)
        self.fill = fill

    @staticmethod
    def _len(cell: RenderableType) -> int:
        return cell.cell_len if isinstance(cell, Text) else len(str(cell))

    def _natural(self, i: int) -> int:
        if self.fill is not None and self.columns[i] == self.flex:
            return max(len(self.columns[i]), self.flex_max)
        return max([len(self.columns[i]), *(self._len(r[i]) for r in self.rows)])

    def _empty(self, i: int) -> bool:
        """No row has anything in column ``i`` (a drawn flex column is never empty)."""
        if not self.rows or (self.fill is not None and self.columns[i] == self.flex):
            return False
        return all(self._len(r[i]) == 0 for r in self.rows)

    def drop_order(self) -> list[str]:
        """Every column that may go, in the order they go as the width shrinks (the class docstring)."""
        order = [c for i, c in enumerate(self.columns) if self._empty(i)]
        order += [c for c in self.drop if c in self.columns]
        order += [c for c in reversed(self.columns) if c not in self.ids]
        return [c for n, c in enumerate(order) if c not in order[:n] and c not in self.ids]

    def columns_for(self, width: int) -> list[str]:
        """The labels shown at ``width`` cells, in order."""
        return [self.columns[i] for i in self._keep(width)[0]]

    def _flex_min(self) -> int:
        flex = self.columns.index(self.flex)
        return max(FLEX_MIN, len(self.flex), min(self.flex_min, self._natural(flex)))

    def _keep(self, width: int) -> tuple[list[int], int]:
        keep = list(range(len(self.columns)))
        flex = self.columns.index(self.flex)
        fixed = 0
        for name in [None, *self.drop_order()]:
            if name is not None:
                keep.remove(self.columns.index(name))
            fixed = sum(self._natural(i) for i in keep if i != flex) + 2 * (len(keep) - 1)
            if fixed + (self._flex_min() if flex in keep else 0) <= width:
                break
        return keep, fixed

    def layout(self, width: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(indices, widths)``: the columns shown at ``width`` cells (indices into ``columns``, in order) and the
        cells each is drawn in (its natural width; the flex column's what is left, within its bounds), counting two
        cells between columns. The live dashboard's tables (``widgets_tables.FilterTable``) lay out by it too."""
        keep, fixed = self._keep(width)
        flex = self.columns.index(self.flex)
        flex_width = max(self._flex_min(), min(self.flex_max, self._natural(flex), width - fixed))
        return tuple(keep), tuple(flex_width if i == flex else self._natural(i) for i in keep)

    def build(self, width: int) -> Table:
        keep, fixed = self._keep(width)
        flex = self.columns.index(self.flex)
        flex_width = max(self._flex_min(), min(self.flex_max, self._natural(flex), width - fixed))
        table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1), title=self.title,
                      title_justify="left", caption=self.caption, show_header=self.show_header)
        for i in keep:
            wraps = self.wrap and i == flex
            is_id = self.columns[i] in self.ids  # never "…": folded whole only where even the ids cannot fit
            table.add_column(self.columns[i], no_wrap=not (wraps or is_id),
                             overflow="fold" if wraps or is_id else "ellipsis",
                             width=flex_width if i == flex else self._natural(i),
                             justify="right" if self.columns[i] in self.right else "left")
        filled = list(self.fill(flex_width)) if self.fill is not None else None
        for n, row in enumerate(self.rows):
            table.add_row(*(filled[n] if filled is not None and i == flex else self._fitted(row[i], i, flex_width)
                            for i in keep))
        return table

    def _fitted(self, cell: RenderableType, i: int, flex_width: int) -> RenderableType:
        """The flex column's ``cell`` cut to ``flex_width`` cells here, never inside an escape (rich's own "…" cut
        ``\\u2028`` to ``\\u202…``: gamead_cli.cell_text); a wrapped column's, or another column's, as is."""
        if i != self.columns.index(self.flex) or self.wrap or not isinstance(cell, (str, Text)):
            return cell
        return clip_cells(cell, flex_width)

    def __rich_console__(self, console: Any, options: Any) -> Any:
        """Measured as the console will write it: each cell folded to its encoding first (``?`` under an ASCII
        locale: gamead_cli.cell_text.folded), so the table keeps its width."""
        self.fold(console.encoding)
        yield self.build(options.max_width)

    def fold(self, encoding: str) -> None:
        """Every cell as a stream in ``encoding`` writes it (:func:`gamead_cli.cell_text.folded_cell`)."""
        self.rows = [[folded_cell(c, encoding) for c in r] for r in self.rows]
