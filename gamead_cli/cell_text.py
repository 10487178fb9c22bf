"""Shown text measured as the terminal will draw it (attack32a F4, F8): folded to the output's encoding before a
table measures it, and cut only between escapes. Pure: the encoding is given (rich's ``Console.encoding``).

* **folded** (:func:`folded`): under an encoding that cannot write a character (``LANG=C``, ``PYTHONIOENCODING=
  ascii``), the stream writes ``?`` for it (:mod:`gamead_cli.stdout_guard`): one cell, where a CJK character took
  two and a combining mark none. A table laid out before that overflowed (a title of 120 combining marks) or came
  out short (CJK), so every table folds its text first, as the stream will: one ``?`` per character.
* **cut** (:func:`clip_cells`): a cell too wide for its column ends in ``…``, never inside an escape that
  :func:`gamead_core.safe_text.shown` wrote (``\\u202…`` reads as a bidi control the API refuses, not the
  U+2028 it was): the whole escape stays or goes.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from rich.cells import cell_len
from rich.text import Text

#: an escape :func:`gamead_core.safe_text.shown` writes: ``\\u009b``, ``\\U000e0069``
ESCAPE = re.compile(r"\\u[0-9a-f]{4}|\\U[0-9a-f]{8}")
ELLIPSIS = "…"

_T = TypeVar("_T", str, Text)


def _unicode(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-16", "utf-32", "utf-8-sig")
    except LookupError:
        return True  # an encoding Python does not know: nothing to fold against


def folded(text: str, encoding: str) -> str:
    """``text`` as a stream in ``encoding`` writes it: each character it cannot encode as ``?`` (the same number of
    characters, so a styled :class:`~rich.text.Text`'s spans still fit); as is under UTF-8 or for ASCII text."""
    if text.isascii() or _unicode(encoding):
        return text
    return "".join(c if c.isascii() or _encodes(c, encoding) else "?" for c in text)


def _encodes(char: str, encoding: str) -> bool:
    try:
        char.encode(encoding)
    except UnicodeError:
        return False
    return True


def folded_cell(cell: Any, encoding: str) -> Any:
    """A table cell (``str`` or :class:`~rich.text.Text`, spans kept) :func:`folded`; other renderables as they
    are."""
    if isinstance(cell, str):
        return folded(cell, encoding)
    if isinstance(cell, Text) and (plain := folded(cell.plain, encoding)) != cell.plain:
        cell = cell.copy()
        cell.plain = plain  # as long as before: the spans stay
    return cell


def folded_tree(value: Any, encoding: str) -> Any:
    """Decoded JSON with every string (keys too) :func:`folded`: what a view of it measures. Other values as is."""
    if _unicode(encoding):
        return value
    if isinstance(value, str):
        return folded(value, encoding)
    if isinstance(value, Mapping):
        return {folded_tree(k, encoding): folded_tree(v, encoding) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [folded_tree(v, encoding) for v in value]
    return value


def cut_at(text: str, end: int) -> int:
    """``end``, or the start of the escape (:data:`ESCAPE`) that ``end`` would cut in half."""
    for found in ESCAPE.finditer(text, max(0, end - 10), end + 10):
        if found.start() < end < found.end():
            return found.start()
    return end


def clip_cells(cell: _T, width: int) -> _T:
    """``cell`` in at most ``width`` terminal cells: as is when it fits, else cut at a character and escape
    boundary (:func:`cut_at`) and ended with ``…``. A :class:`~rich.text.Text` keeps its style and spans."""
    plain = cell.plain if isinstance(cell, Text) else cell
    if cell_len(plain) <= width:
        return cell
    end, used = 0, 0
    while end < len(plain) and used + cell_len(plain[end]) <= width - 1:
        used += cell_len(plain[end])
        end += 1
    end = cut_at(plain, end)
    if isinstance(cell, Text):
        kept = cell[:end]
        kept.append(ELLIPSIS)
        return kept
    return plain[:end] + ELLIPSIS


def fit_fields(fields: Sequence[tuple[Text, int]], width: int | None) -> Text:
    """One line of ``fields`` (each ``(text, rank)``) in at most ``width`` cells by dropping whole fields, never
    half of one (regress41 F7: a header cut after ``1.4 MiB stored 4.0s`` read as a duration, not an age): the
    highest rank first, of equal ranks the earliest first; rank 0 is never dropped (a line of those alone may still
    be cut by the terminal). ``width`` None: every field. The same rule as tables' whole columns
    (:meth:`gamead_cli.fitted.FittedTable.layout`). Pure."""
    kept = list(range(len(fields)))
    if width is not None:
        droppable = sorted((i for i, (_, rank) in enumerate(fields) if rank > 0), key=lambda i: (-fields[i][1], i))
        used = sum(cell_len(text.plain) for text, _ in fields)
        for i in droppable:
            if used <= width:
                break
            kept.remove(i)
            used -= cell_len(fields[i][0].plain)
    line = Text()
    for i in kept:
        line.append_text(fields[i][0])
    return line


__all__ = ["ELLIPSIS", "ESCAPE", "clip_cells", "cut_at", "fit_fields", "folded", "folded_cell", "folded_tree"]
