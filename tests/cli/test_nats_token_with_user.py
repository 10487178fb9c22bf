"""attack26b F1: ``nats.token`` together with ``nats.user``/``nats.password`` cannot work: nats-py's CONNECT sends the
user and password and leaves the token out, so a server requiring the token refuses every process (a ``gamead up``
stack could not start, its line asking the operator to set what was set). Every role now refuses the combination
at config validation: one line naming both settings, exit 5, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import clean_env, run_gamead


@pytest.mark.parametrize("argv", [
    ("worker", "--nats-url", "nats://127.0.0.1:1"),
    ("serve", "--nats-url", "nats://127.0.0.1:1", "--port", "0"),
    ("up", "--workers", "0", "--port", "0"),
])
def test_a_token_with_a_user_and_password_is_one_line_and_exit_5_for_every_role(
        tmp_path: Path, argv: tuple[str, ...]) -> None:
    extra = ("--data-dir", str(tmp_path / "d")) if argv[0] == "up" else ()
    done = run_gamead(*argv, *extra, cwd=tmp_path, timeout=60, env=clean_env(
        GAMEAD_NATS__TOKEN="tok-f1", GAMEAD_NATS__USER="u", GAMEAD_NATS__PASSWORD="p"))
    assert done.returncode == 5, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "nats.token" in lines[0] and "nats.user/nats.password" in lines[0], lines[0]
    assert "tok-f1" not in done.stderr + done.stdout
    assert not (tmp_path / "d").exists()  # nothing started
