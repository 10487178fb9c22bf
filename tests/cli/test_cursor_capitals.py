"""attack45 F10: `gamead ads list --cursor 1796492435941404-01M93MP8F5P0TQZ86HK4QW2HH8` was refused, exit 2, "is not a
page cursor", while `ads get 01M93…` takes capitals ("capitals are the same id"): a cursor copied from a
case-folding tool (a spreadsheet, an upper-casing log viewer) now reads as the one printed."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from gamead_cli.options import cursor_arg

PRINTED = "1796492435941404-01m93mp8f5p0tqz86hk4qw2hh8"


def test_a_cursor_in_capitals_is_the_cursor_printed() -> None:
    assert cursor_arg(PRINTED.upper()) == PRINTED
    assert cursor_arg(PRINTED) == PRINTED
    assert cursor_arg(None) is None


@pytest.mark.parametrize("bad", ["abc", "-1", "99999999999999999-zzzzzzzzzzzzzzzzzzzzzzzzzz"])
def test_what_is_no_cursor_is_still_refused(bad: str) -> None:
    with pytest.raises(typer.BadParameter, match="is not a page cursor"):
        cursor_arg(bad)


def test_a_refused_cursor_is_quoted_as_given_not_lowered(closed_api_url: str, isolated_env: Path) -> None:
    """attack47 F9: ``--cursor $'\\e[2J'`` was refused as ``'\\x1b[2j' is not a page cursor``."""
    from typer.testing import CliRunner

    from gamead_cli.main import app

    result = CliRunner().invoke(app, ["ads", "list", "--cursor", "\x1b[2J", "--api", closed_api_url])
    assert result.exit_code == 2, result.stderr
    assert "'\\x1b[2J' is not a page cursor (" in " ".join(result.stderr.split()), result.stderr


def test_ads_list_sends_a_cursor_in_capitals_as_printed(closed_api_url: str, isolated_env: Path) -> None:
    """The verb itself: past the check (exit 2 before, naming --cursor), to the API (none here: exit 3)."""
    from typer.testing import CliRunner

    from gamead_cli.main import app

    result = CliRunner().invoke(app, ["ads", "list", "--cursor", PRINTED.upper(), "--api", closed_api_url])
    assert result.exit_code == 3, result.stderr  # was 2: "… is not a page cursor"
    assert "cannot reach" in result.stderr
