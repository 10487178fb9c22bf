"""A progress bar on a stderr that is no terminal (a CI log, a pipe) says where its work stands in plain lines, one
every ``PLAIN_EVERY`` s at most once the work has gone on that long, and its end (leftout59: ``dlq replay`` /
``purge``, ``doctor --repair``, ``submit --count`` said nothing in a CI log until they ended); short work says
nothing; a stderr that cannot take a line changes nothing else."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.progress import BarColumn, TextColumn

from gamead_cli import output
from gamead_cli.output import StderrProgress, plain_progress


def _bar(file: io.StringIO) -> StderrProgress:
    console = Console(file=file, highlight=False, width=200)
    return StderrProgress(TextColumn("{task.description}"), BarColumn(), console=console,
                          disable=not console.is_terminal)


def test_long_work_says_where_it_stands_then_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "PLAIN_EVERY", 0.0)  # each change is "long" past the interval
    err = io.StringIO()
    with _bar(err) as bar:
        task = bar.add_task("submitting", total=5_000, info="")
        bar.update(task, advance=1_200, info="1198 ok, 2 rejected")
        bar.update(task, advance=3_800, info="4998 ok, 2 rejected")
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("submitting · 1,200/5,000 · 1198 ok, 2 rejected · "), lines
    assert lines[-1].startswith("submitting · 5,000/5,000 · 4998 ok, 2 rejected · "), lines
    assert len(lines) == 2, lines  # the end was said as it came: not again


def test_short_work_says_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "PLAIN_EVERY", 3600.0)
    err = io.StringIO()
    with _bar(err) as bar:
        task = bar.add_task("exporting", total=None)
        bar.update(task, completed=7)
    assert err.getvalue() == ""


def test_a_hidden_task_and_a_stderr_that_takes_nothing_say_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "PLAIN_EVERY", 0.0)
    err = io.StringIO()
    with _bar(err) as bar:
        bar.update(bar.add_task("importing", total=3, visible=False), completed=2)
    assert err.getvalue() == ""

    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    with _bar(Full()) as bar:  # no error raised through the work
        bar.update(bar.add_task("purging", total=3), completed=3)


def test_the_line_names_what_is_known() -> None:
    assert plain_progress("selecting entries", 0, None, None, 1.5) == "selecting entries · 1.5s"
    assert plain_progress("exporting", 812, None, "", 65) == "exporting · 812 · 1m05s"
