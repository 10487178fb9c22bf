"""The README's Commands table names real commands, and every flag it mentions exists on them.

(Every runnable command of the README's ```bash blocks is run verbatim against a live ``gamead up`` by
``tests/integration/test_up.py``; this table is prose, so it is checked against each command's ``--help``.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gamead_cli.main import app

README = Path(__file__).resolve().parents[2] / "README.md"


def table_rows() -> list[tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    table = text.split("| command | what it does |", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.strip().splitlines()[1:]:
        first, rest = line.strip("|").split("|", 1)
        rows.append((first.strip(), rest))
    return rows


def commands_of(cell: str) -> list[tuple[list[str], list[str]]]:
    """``gamead scale status / set N --for 10m / clear`` → ``[(["scale","status"], []), (["scale","set"],
    ["--for"]), (["scale","clear"], [])]``; ``gamead ads get/list`` → two commands."""
    words = re.search(r"`gamead ([^`]+)`", cell)
    assert words, cell
    noun, _, rest = words.group(1).partition(" ")
    if not rest:
        return [([noun], [])]
    out = []
    for alt in re.split(r"\s*/\s*", rest):
        verb = alt.split()[0]
        out.append(([noun, verb], re.findall(r"--[a-z][a-z-]*", alt)))
    return out


ROWS = table_rows()


@pytest.mark.parametrize(("cell", "text"), ROWS, ids=[r[0].strip("`") for r in ROWS])
def test_each_command_of_the_table_exists_with_the_flags_it_mentions(cell: str, text: str) -> None:
    runner = CliRunner()
    helps = []
    for argv, flags in commands_of(cell):
        result = runner.invoke(app, [*argv, "--help"], terminal_width=200)
        assert result.exit_code == 0, f"gamead {' '.join(argv)} --help: {result.output}"
        for flag in flags:
            assert flag in result.stdout, f"{flag} not in gamead {' '.join(argv)} --help"
        helps.append(result.stdout)
    for flag in set(re.findall(r"`(--[a-z][a-z-]*)", text)):  # flags named in the description
        assert any(flag in h for h in helps), f"{cell}: {flag} is in the README but in no --help"


def test_the_table_lists_every_command() -> None:
    listed = {argv[0] for cell, _ in ROWS for argv, _ in commands_of(cell)}
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    commands = result.stdout.split("Commands:", 1)[-1]  # Click's own page (gamead_cli.main: no rich import)
    shown = set(re.findall(r"^ {2}(\w+)\s{2,}", commands, flags=re.M))
    assert shown and shown <= listed, shown - listed
