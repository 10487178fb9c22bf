"""start58: a process builds ``gamead``'s click commands once (a fork server before it forks, for all its children).

Typer built the root group on every call of the app (~4 ms of a start) and ``load_command`` a command's click
command on every use (1-3 ms); a fork server's child built both again for its one command."""

from __future__ import annotations

import pytest

from gamead_cli.command_table import load_command
from gamead_cli.root import app


def test_the_root_group_and_a_command_are_built_once() -> None:
    assert app.click_group() is app.click_group()
    assert load_command("worker") is load_command("worker")  # a new one each call before
    assert load_command("dlq") is load_command("dlq")


def test_a_kept_group_still_answers_each_call_as_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    """Two calls of the kept group in one process: each its own exit code and output (the guarded group's
    per-call state is set per call)."""
    codes = []
    for argv in (["--version"], ["worker", "--id", "bad id!"]):
        with pytest.raises(SystemExit) as ended:
            app(argv)
        codes.append(ended.value.code)
    out, err = capsys.readouterr()
    assert codes == [0, 2]
    assert out.startswith("gamead ") and "--id" in err
