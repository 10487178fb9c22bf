"""attack46 F9: `gamead up --data-dir "$DIR"` with DIR unset (an empty value) ran the stack in the working
directory: its JetStream store, logs, nats.conf and config-in-force.yaml (holding the stack's NATS token) among the
operator's files; `GAMEAD_EMBEDDED__DATA_DIR=` the same. An empty data dir is refused now, one red line naming the
flag (exit 2) or the setting and where it was written (exit 5), before anything starts or is written; `.` still
says it on purpose."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gamead_cli import exitcodes
from tests.cli.test_cli_errors import gamead, one_red_line


@pytest.mark.parametrize(("args", "env", "said", "code"), [
    (["--data-dir", ""], {}, "error: --data-dir: is empty", exitcodes.USAGE),  # a flag's value: bad usage (leftout58)
    ([], {"GAMEAD_EMBEDDED__DATA_DIR": ""}, "embedded.data_dir (GAMEAD_EMBEDDED__DATA_DIR=)", exitcodes.CONFIG),
], ids=["flag", "env"])
def test_an_empty_data_dir_is_refused_and_nothing_is_written(tmp_path: Path, args: list[str], env: dict[str, str],
                                                             said: str, code: int,
                                                             closed_port: Callable[[], int]) -> None:
    (tmp_path / "notes.txt").write_text("the operator's own file\n", encoding="utf-8")
    result = gamead("up", "--port", str(closed_port()), "--workers", "0", *args, cwd=tmp_path, timeout=20, **env)
    assert result.returncode == code, result.stderr
    one_red_line(result, said, "is empty: name a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no store, logs, nats.conf or token


@pytest.mark.parametrize(("args", "env", "said", "code"), [
    (["--data-dir", "stack\nb"], {}, "error: --data-dir: it holds the control character '\\n' at position 5",
     exitcodes.USAGE),
    ([], {"GAMEAD_EMBEDDED__DATA_DIR": "stack\tb"}, "embedded.data_dir (GAMEAD_EMBEDDED__DATA_DIR=", exitcodes.CONFIG),
], ids=["flag", "env"])
def test_a_data_dir_holding_a_control_character_is_refused_naming_it(
        tmp_path: Path, args: list[str], env: dict[str, str], said: str, code: int,
        closed_port: Callable[[], int]) -> None:
    """leftout59: `gamead up --data-dir $'stack\\nb'` ran, every line that named the directory split in two (no path
    to paste) and nats.conf's store_dir across two lines. Refused as a URL holding one is: one red line naming the
    character (exit 2 for the flag, 5 for the setting), nothing written."""
    result = gamead("up", "--port", str(closed_port()), "--workers", "0", *args, cwd=tmp_path, timeout=20, **env)
    assert result.returncode == code, result.stderr
    one_red_line(result, said, "(a data directory has none)")
    assert list(tmp_path.iterdir()) == []
