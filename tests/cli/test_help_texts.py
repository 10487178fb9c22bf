"""Every verb's --help has an example and no hole left by a swallowed ``[markup]`` (issue C4 item 8)."""

from __future__ import annotations

import re
import shlex
import subprocess
from typing import Any

import pytest
from typer.testing import CliRunner

from gamead_cli.main import COMMANDS, app, load_command
from tests.support import clean_env, gamead_argv


def _paths() -> list[list[str]]:
    """Every runnable command as its argv: ``[up]``, ``[dlq, replay]``…"""
    out: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            out.append(path)

    for name in COMMANDS:
        walk(load_command(name), [name])
    return out


PATHS = _paths()
STRAY = re.compile(r"[\w)\]] [.,;:](?=\s|$)")


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) for p in PATHS])
def test_every_verb_help_has_an_example_and_no_stray_space(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())
    assert "Example" in text, f"`gamead {' '.join(path)} --help` shows no example"
    # a `[dlq.replay_rate]` eaten as rich markup leaves "Replays per second ." (a word, a space, a lone mark)
    assert not STRAY.search(text), STRAY.search(text)


def test_the_walk_covers_the_review_cases() -> None:
    assert {("scale", "status"), ("scale", "clear"), ("dlq", "replay")} <= {tuple(p) for p in PATHS}


GROUPS = [[name] for name in COMMANDS if getattr(load_command(name), "commands", None)]
COMPLETION = ("--install-completion", "--show-completion")


def _description(output: str) -> list[str]:
    """The lines of a rich ``--help`` page between the usage line and the first box (the docstring)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "Usage:" in line) + 1
    end = next((i for i, line in enumerate(lines) if line.lstrip().startswith("╭")), len(lines))
    return [line.rstrip() for line in lines[start:end]]


@pytest.mark.parametrize("path", PATHS + GROUPS, ids=[" ".join(p) for p in PATHS + GROUPS])
def test_every_verb_help_reads_cleanly_at_80_columns(path: list[str]) -> None:
    """Reviewer V8 / newcomer N8: ``--install-completion`` and ``--show-completion`` were in every verb's help,
    and at 80 columns each hard-wrapped docstring line wrapped again (``… the`` alone on a line). Completion is
    the root's option only; a paragraph is wrapped by the terminal, so no line of it ends early."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for option in COMPLETION:
        assert option not in result.output, f"`gamead {' '.join(path)} --help` shows {option}"
    assert max(len(line) for line in result.output.splitlines()) <= 80
    text = _description(result.output)
    def prose(line: str) -> bool:  # not blank, not an example (indented, or a command line of a group's help)
        return bool(line.strip()) and not line.startswith("   ") and not line.strip().startswith("gamead ")

    for line, after in zip(text, text[1:]):
        continued = prose(line) and prose(after)
        if continued:  # a line followed by more of its paragraph was wrapped by the terminal: it is (nearly) full
            assert len(line) >= 50, f"`gamead {' '.join(path)} --help` breaks early at 80 columns: {line!r}"


def test_completion_is_offered_on_the_root_help_only() -> None:
    root = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "80"})
    assert root.exit_code == 0
    assert all(option in root.output for option in COMPLETION)
    # the real command from bash (Typer asks shellingham for the parent shell: under `make`, sh, "not supported")
    command = " ".join(shlex.quote(a) for a in gamead_argv("--show-completion"))
    shown = subprocess.run(["bash", "-c", f"{command}; true"], env=clean_env(), capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0 and "_GAMEAD_COMPLETE" in shown.stdout, shown.stderr
