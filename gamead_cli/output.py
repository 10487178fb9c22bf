"""Everything the CLI prints: one red error line, JSON for scripts, rich tables and panels for people.

Here: the consoles, the one-line messages on stderr, JSON on stdout and :func:`emit`; how values are written is
in :mod:`gamead_cli.formats`, the views of records in :mod:`gamead_cli.record_views`.

Rules: results go to stdout; errors, spinners and progress bars go to stderr, so ``-o json`` output can
always be piped into ``jq``. JSON is printed without colour or markup.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.progress import MofNCompleteColumn, Progress, Task
from rich.text import Text

from gamead_cli.cell_text import folded_tree
from gamead_cli.formats import command_text, count_text, took
from gamead_cli.inputs import strict_dumps
from gamead_cli.options import OutputFormat
from gamead_core.safe_text import byte_escapes, shown, shown_tree


def stdout_console() -> Console:
    """A console on the current ``sys.stdout`` (looked up per call, so test runners can capture it)."""
    return Console(file=sys.stdout, highlight=False)


def stderr_console() -> Console:
    """A console on the current ``sys.stderr``: errors, spinners, progress bars. With fd 2 closed (``2>&-``:
    ``sys.stderr`` is None) on ``/dev/null``: never on stdout, where rich would put it (a ``-o json`` pipe). While a
    :class:`StderrProgress` runs on it, that bar's console, so a line printed meanwhile, from any thread, goes above
    the bar (another console writes past rich's proxy of ``sys.stderr``: into the bar's line, probe47 F3)."""
    file = sys.stderr if sys.stderr is not None else _null()
    live = (_LIVE[-1:] or [None])[0]  # one read: a bar may stop on another thread meanwhile
    if live is not None and live.file is getattr(file, "rich_proxied_file", file):
        return live
    return Console(file=file, highlight=False)


#: the consoles of the progress bars running on stderr (:class:`StderrProgress`), the latest last
_LIVE: list[Console] = []


#: seconds between the plain lines of a progress bar not shown (stderr no terminal: CI logs, a pipe); the first comes
#: once its work has gone on that long (short work says no more than before), as Terraform's "Still creating…"
PLAIN_EVERY = 10.0


class StderrProgress(Progress):
    """A progress bar on stderr whose console :func:`stderr_console` gives while it runs: every stderr line of the
    process (an error, a note, the API client's rate-limit line from a sender thread) is printed above it.

    Disabled (stderr no terminal), it says where its work stands in plain lines instead, one every
    :data:`PLAIN_EVERY` s at most, the first once the work has gone on that long, and the last at its end if it said
    one: ``submitting · 1,200/5,000 · 1198 ok, 2 rejected · 30s`` (leftout59: ``dlq replay`` / ``purge`` /
    ``import`` / ``export``, ``doctor --repair`` and ``submit`` said nothing in a CI log until they ended, however
    long). Only when a task changes (:meth:`update`, :meth:`advance`); a line stderr cannot take is left out."""

    def __init__(self, *columns: Any, **kw: Any) -> None:
        super().__init__(*columns, **kw)
        self._plain_at = time.monotonic()  #: when the last plain line was said (or the bar made)
        self._plain_said: dict[Any, str] = {}  #: task → its last plain line

    def start(self) -> None:
        _LIVE.append(self.console)
        self._plain_at = time.monotonic()
        super().start()

    def update(self, task_id: Any, **kw: Any) -> None:  # type: ignore[override]  # rich's keywords, passed on
        super().update(task_id, **kw)
        self._plain(task_id)

    def advance(self, task_id: Any, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._plain(task_id)

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            if self.console in _LIVE:
                _LIVE.remove(self.console)
            for task_id in list(self._plain_said):  # its end, if it said where it stood before
                self._plain(task_id, end=True)

    def _plain(self, task_id: Any, *, end: bool = False) -> None:
        if not self.disable:  # a terminal: the bar shows it (no lock taken per update of a submit's batches)
            return
        with self._lock:
            task = self._tasks.get(task_id)
            now = time.monotonic()
            if task is None or not task.visible or (
                    now - self._plain_at < PLAIN_EVERY if not end else task_id not in self._plain_said):
                return
            line = plain_progress(task.description, task.completed, task.total, task.fields.get("info"),
                                  task.elapsed)
            if end and self._plain_said.get(task_id, "").rsplit(" · ", 1)[0] == line.rsplit(" · ", 1)[0]:
                return  # said as it ended
            self._plain_at, self._plain_said[task_id] = now, line
        try:
            self.console.print(Text(_one_line(line), style="dim"), soft_wrap=True)
        except (OSError, ValueError):  # stderr gone or full (ValueError: closed): the work goes on regardless
            pass


def plain_progress(what: str, done: float, total: float | None, info: Any, elapsed: float | None) -> str:
    """A progress bar's plain line (:class:`StderrProgress`): ``replaying · replayed 7 · skipped 0 · 7/28 · 12s``
    (``info``: the bar's words after its count, if any; ``elapsed``: seconds). Pure."""
    count = f"{count_text(int(done))}/{count_text(int(total))}" if total is not None else \
        (count_text(int(done)) if done else "")
    return " · ".join(str(part) for part in (what, count, info, took(elapsed or 0.0)) if part)


class CountsColumn(MofNCompleteColumn):
    """A progress bar's ``done/total`` as every count the CLI prints, with thousands separators: ``9,700/10,000``
    (rich's own column wrote ``9700/10000`` beside a summary's ``10,000 ads``: newcomer59), ``?`` for an unknown
    total, the done figure padded to the total's width so the bar does not move."""

    def render(self, task: Task) -> Text:
        total = count_text(int(task.total)) if task.total is not None else "?"
        done = count_text(int(task.completed))
        return Text(f"{done:>{len(total)}}{self.separator}{total}", style="progress.download")


def _null() -> Any:
    if "file" not in _NULL:
        _NULL["file"] = open(os.devnull, "w")  # noqa: SIM115 - kept open for the process's life
    return _NULL["file"]


_NULL: dict[str, Any] = {}


def _one_line(text: str) -> str:
    return byte_escapes(shown(" ".join(text.split())))  # a command-line byte that is no text: \xff (probe49 F8)


def red_line(text: str) -> None:
    """Print ``text`` as one red line on stderr (a rejected input named: ``ads.ndjson:2: invalid_json: …``)."""
    stderr_console().print(Text(_one_line(text), style="red"), soft_wrap=True)


def error_line(exc_or_message: BaseException | str) -> None:
    """Print exactly one red ``error: …`` line to stderr. Never a traceback."""
    if isinstance(exc_or_message, BaseException):
        message = getattr(exc_or_message, "message", None) or str(exc_or_message)
        message = message or type(exc_or_message).__name__
    else:
        message = exc_or_message
    line = Text(f"error: {_one_line(str(message))}", style="bold red")
    stderr_console().print(line, soft_wrap=True)


def note_line(message: str) -> None:
    """A dim informational line on stderr (never pollutes machine-readable stdout)."""
    stderr_console().print(Text(_one_line(message), style="dim"), soft_wrap=True)


#: ``done`` once :func:`print_json` printed a document: the error boundary (``gamead_cli.root``) then adds none
JSON_PRINTED = {"done": False}


def print_json(data: Any) -> None:
    """Plain JSON on stdout: no colour, no markup, one trailing newline."""
    sys.stdout.write(strict_dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()
    JSON_PRINTED["done"] = True


def emit(
    data: Any,
    output: OutputFormat,
    render: Callable[[Any], RenderableType] | None = None,
) -> None:
    """Print a command's result: JSON for ``-o json`` (JSON escapes every non-ASCII character), else
    ``render(data)`` of the data with every text escaped where it would not show as itself
    (:func:`gamead_core.safe_text.shown_tree`: a stored ``A\x9b31m`` prints as ``A\u009b31m``, never as a
    terminal command), or the data as JSON. Not to a terminal (a pipe, a file) and without ``COLUMNS``, each text
    of the view (a part of a group) is printed on one line however long, never wrapped at rich's 80 columns;
    tables and panels keep that width (or ``COLUMNS``, whenever set: then the view is printed as to a terminal)."""
    if output == OutputFormat.json or render is None:
        print_json(data)
        return
    console = stdout_console()  # the data as the stream will write it (``?`` under an ASCII locale), so a view
    shown_view = render(folded_tree(shown_tree(data), console.encoding))  # measures what is written (cell_text)
    if not console.is_terminal and not os.environ.get("COLUMNS"):  # a pipe or a file: prose on one line each
        for part in _parts(shown_view):  # (rich's 80 columns would cut a sentence, an id, a path: grep misses it)
            prose = getattr(part, "prose", None)  # a table's legend: its sentences, for the width the table has
            if callable(prose):
                part = prose(console.width)
            console.print(part, soft_wrap=isinstance(part, Text), crop=False)  # tables keep their width
        return
    if isinstance(shown_view, Text) and shown_view.no_wrap:  # print() joins a bare Text into a new one, wrapped
        shown_view = Group(shown_view)
    console.print(shown_view, crop=False)  # a command_text line runs past the width, whole


def _parts(view: RenderableType) -> list[RenderableType]:
    """``view``'s parts printed one after the other: a group's (nested ones too), else ``view`` itself. Pure."""
    return [p for r in view.renderables for p in _parts(r)] if isinstance(view, Group) else [view]


def print_command(command: str) -> None:
    """``command`` on stdout as one line however narrow the terminal (it folds it; rich would break it at a space,
    and a command cut across lines cannot be pasted)."""
    stdout_console().print(command_text(command, style=""), soft_wrap=True)
