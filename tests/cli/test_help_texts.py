"""Every verb's --help has an example and no hole left by a swallowed ``[markup]`` (issue C4 item 8)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from typer.testing import CliRunner

from gamead_cli.main import COMMANDS, app, load_command


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
