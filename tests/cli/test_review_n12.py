"""A newcomer's trial from a fresh clone, README in hand (session 11): what did not work as written."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

from rich.console import Console
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_cli.record_views import ad_view


def test_the_root_help_example_is_a_submit_the_cli_accepts(closed_port: Callable[[], int]) -> None:
    """``gamead --help`` said ``gamead submit --title 'Sky Saga' --wait``: run as written, exit 2 "needs
    --genre". Its submit line now parses and only fails to reach the (absent) API: exit 3, not 2."""
    root = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    example = re.search(r"gamead submit (--title '([^']+)' .*?--wait)", " ".join(root.output.split()))
    assert example is not None, root.output
    title = example.group(2)
    args = example.group(1).replace(f"'{title}'", "TITLE").split()
    args[args.index("TITLE")] = title
    result = CliRunner().invoke(app, ["submit", *args, "--api", f"http://127.0.0.1:{closed_port()}"])
    assert result.exit_code == 3, result.output


def test_a_dead_ads_end_is_labelled_dead_at_not_completed() -> None:
    """``gamead ads get`` of a dead ad labelled the time it died ``completed``; ``dlq show`` says ``dead at``."""
    record = {"id": "01m8rdy5e948kng8fkmbqzve15", "status": "dead", "priority": 3,
              "submittedAt": "2026-12-01T09:20:00Z", "startedAt": "2026-12-01T09:20:01Z",
              "completedAt": "2026-12-01T09:24:13Z", "attempts": 3, "ad": {"title": "Sky Saga", "genre": "RPG"}}
    out = io.StringIO()
    Console(file=out, width=120, no_color=True).print(ad_view(record))
    assert "dead at" in out.getvalue() and "completed" not in out.getvalue(), out.getvalue()


def test_top_without_a_terminal_names_no_flag_it_was_not_given(closed_port: Callable[[], int]) -> None:
    """``gamead top < /dev/null`` (no --once) said ``Invalid value for --once: …``; the flag was never given."""
    result = CliRunner().invoke(app, ["top", "--api", f"http://127.0.0.1:{closed_port()}"])
    assert result.exit_code == 2
    assert "needs a terminal: add --once" in result.output and "Invalid value" not in result.output, result.output


def _top_on_a_pty(term: str, stdin_too: bool, api_port: int) -> tuple[int, str]:
    """``gamead top`` (to a closed API on ``api_port``, held by the caller) with stdout on a real pseudo-terminal,
    stdin on it too (``stdin_too``) or ``/dev/null``, under ``TERM=term``: its exit code and stderr."""
    import os
    import pty
    import subprocess

    from tests.forked_popen import gamead_run
    from tests.support import clean_env, gamead_argv

    leader, follower = pty.openpty()
    try:
        done = gamead_run(gamead_argv("top", "--api", f"http://127.0.0.1:{api_port}"),
                          stdin=follower if stdin_too else subprocess.DEVNULL, stdout=follower,
                          stderr=subprocess.PIPE, env=clean_env(TERM=term), timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    return done.returncode, done.stderr.decode()


def test_top_on_a_dumb_terminal_refuses_the_full_screen_ui(closed_port: Callable[[], int]) -> None:
    """attack30c: under ``TERM=dumb`` (Emacs' shell, some CI consoles) on a real terminal, ``gamead top`` drew the
    full-screen Textual UI and its 24-bit colour escapes all the same. It now says why it cannot, exit 2, before
    reaching for the API. A real pseudo-terminal: stdout is a TTY, only TERM says it cannot draw."""
    code, said = _top_on_a_pty("dumb", stdin_too=True, api_port=closed_port())
    assert code == 2, said
    assert "needs a terminal that can draw it (TERM=dumb): add --once" in said, said


def test_top_with_stdin_not_a_terminal_refuses_the_full_screen_ui(closed_port: Callable[[], int]) -> None:
    """attack44c F3: ``gamead top < /dev/null`` on a terminal ran the dashboard with its input thread reading
    end-of-file over and over (30 % of a core, 18x a live top's CPU, until killed; no key could quit it). It now
    says why it cannot, exit 2, before reaching for the API. Without the check: still running at the deadline."""
    code, said = _top_on_a_pty("xterm", stdin_too=False, api_port=closed_port())
    assert code == 2, said
    assert "reads its keys from a terminal (stdin is not one): add --once" in said, said
