"""A wait the CLI cannot count (one long request, one ad's analysis) on stderr: a spinner on a terminal; else plain
lines as a progress bar's (:class:`gamead_cli.output.StderrProgress`), ``checking every invariant · 20s`` once the
wait has gone on :data:`gamead_cli.output.PLAIN_EVERY` s, one every ``PLAIN_EVERY`` s at most, and its end
(``checked every invariant · 34s``) if it said where it stood (leftout60: ``gamead doctor``'s check, up to 60 s,
and ``gamead submit --wait``'s one ad said nothing in a CI log until they ended). Never on stdout."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from rich.progress import TextColumn

from gamead_cli import output
from gamead_cli.output import StderrProgress, stderr_console


class StderrWait:
    """``with StderrWait("checking every invariant", done="checked every invariant") as wait: …``: the words of the
    wait (``what``, changed by :meth:`update`) and, when it ends without an error, of its end (``done``, or
    :meth:`finish`'s; else the last ``what``). An error ends it unsaid: the CLI's red line says that end."""

    def __init__(self, what: str, *, done: str = "") -> None:
        self._what, self._done = what, done
        self._status: Any = None  #: the spinner, on a terminal
        self._bar: StderrProgress | None = None  #: the plain lines' bar, on anything else
        self._task: Any = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> StderrWait:
        console = stderr_console()
        if console.is_terminal:
            self._status = console.status(f"{self._what}…", spinner="dots")
            self._status.__enter__()
            return self
        self._bar = StderrProgress(TextColumn("{task.description}"), console=console, disable=True)
        self._bar.start()
        self._task = self._bar.add_task(self._what, total=None)
        # the bar says a line only when its task changes: a wait has no change but time, so a ticker changes it
        self._ticker = threading.Thread(target=self._tick, name="gamead-wait-lines", daemon=True)
        self._ticker.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(min(1.0, max(output.PLAIN_EVERY / 10, 0.05))):
            if self._bar is not None:
                self._bar.update(self._task)

    def update(self, what: str) -> None:
        """The wait's words from now on (``waiting for ad 01j… (processing)``)."""
        self._what = what
        if self._status is not None:
            self._status.update(f"{what}…")
        elif self._bar is not None:
            self._bar.update(self._task, description=what)

    def finish(self, done: str) -> None:
        """The words of its end, said as it ends if it said where it stood (``ad 01j… completed``)."""
        self._done = done

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._status is not None:
            self._status.__exit__(kind, exc, tb)
            return
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._bar is None:
            return
        if kind is None and self._done:
            self._bar.update(self._task, description=self._done)
        elif kind is not None:
            self._bar.update(self._task, visible=False)  # the red line says how it ended
        self._bar.stop()


__all__ = ["StderrWait"]
