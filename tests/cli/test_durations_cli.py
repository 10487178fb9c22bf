"""Durations on the command line (fix34 item 1): ``gamead dlq purge --since 2h30m`` was refused (exit 2, "cannot
read time '2h30m'") though the CLI prints ages that way. Every option that takes a duration now reads every form
the CLI prints; a bad one is one line naming the forms read, exit 2, before any request.

Run against a closed port: exit 3 (API unreachable) proves the option was read and a request was tried; exit 2
that it was refused before any."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gamead_cli import exitcodes
from gamead_cli.main import app as cli

READ = [
    ["dlq", "purge", "--since", "2h30m", "--yes"],
    ["dlq", "list", "--since", "1d4h", "--until", "90s"],
    ["dlq", "export", "-", "--since", "4m05s ago"],
    ["audit", "--since", "1h30m"],
    ["scale", "set", "2", "--for", "1h30m"],
    ["submit", "--title", "t", "--genre", "rpg", "--cta", "Play", "--wait", "--timeout", "1m30s"],
    ["doctor", "--settle", "500ms"],
    ["top", "--once", "--refresh", "2s"],
]
REFUSED = [
    (["dlq", "purge", "--since", "2h30", "--yes"], "--since"),
    (["scale", "set", "2", "--for", "30m2h"], "--for"),
    (["submit", "--title", "t", "--genre", "rpg", "--cta", "Play", "--timeout", "soon"], "--timeout"),
    (["doctor", "--settle", "1x"], "--settle"),
    (["top", "--once", "--refresh", "1 fortnight"], "--refresh"),
]


@pytest.mark.parametrize("args", READ, ids=[" ".join(a)[:50] for a in READ])
def test_every_printed_form_is_taken(args: list[str], closed_api_url: str, isolated_env: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMEAD_CLIENT__RETRY_FOR", "0")  # no retries of the closed port
    result = CliRunner().invoke(cli, [*args, "--api", closed_api_url])
    assert result.exit_code == exitcodes.UNREACHABLE, result.output  # read, then the API was not reached


@pytest.mark.parametrize("args, flag", REFUSED, ids=[" ".join(a)[:50] for a, _ in REFUSED])
def test_a_bad_duration_is_one_line_naming_the_forms(args: list[str], flag: str, closed_api_url: str,
                                                     isolated_env: Path) -> None:
    result = CliRunner().invoke(cli, [*args, "--api", closed_api_url])
    assert result.exit_code == exitcodes.USAGE, result.output
    text = " ".join(result.output.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())  # Click's box, if any
    assert "Traceback" not in text and flag in text and "2h30m, 1d4h" in text, result.output
