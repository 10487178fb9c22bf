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
