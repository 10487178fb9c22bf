"""`gamead up`'s hints run verbatim in another terminal, where the venv is not active (issue 10 item 4)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from gamead_cli.commands.up import gamead_program, next_commands

VENV_BIN = Path(sys.executable).parent


@pytest.mark.skipif(not (VENV_BIN / "gamead").is_file(), reason="gamead is not installed beside this Python")
def test_a_hint_names_the_venv_gamead_when_the_path_does_not_find_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # a fresh terminal after `make up`: no venv on the PATH
    monkeypatch.chdir(VENV_BIN.parent.parent)  # the checkout, where `make up` runs
    program = gamead_program()
    assert program == os.path.join(VENV_BIN.parent.name, "bin", "gamead")  # `.venv/bin/gamead`
    assert all(cmd.startswith(f"{program} ") for cmd in next_commands("http://127.0.0.1:9", "x", program)[:5])


@pytest.mark.skipif(not (VENV_BIN / "gamead").is_file(), reason="gamead is not installed beside this Python")
def test_a_hint_says_gamead_when_the_path_finds_this_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{VENV_BIN}:/usr/bin:/bin")  # an active venv
    assert gamead_program() == "gamead"


def test_elsewhere_the_hint_is_an_absolute_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.chdir(tmp_path)
    program = gamead_program()
    assert program == "gamead" or Path(program).is_absolute()
