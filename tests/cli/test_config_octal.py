"""attack46 F4: a zero-padded number in the config file was read as YAML 1.1's octal, without a word:
``queue.ack_wait: 030`` ran with 24 s and ``worker.concurrency: 010`` with 8, while ``GAMEAD_WORKER__CONCURRENCY=010``
is 10. Now such a number is refused for every command (exit 5, one red line naming the file, the key and its line,
never the value: a token may be one); quoted, or without the zero, it is read as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gamead_cli import exitcodes
from tests.cli.test_cli_errors import gamead, one_red_line


@pytest.mark.parametrize(("text", "key", "line"), [
    ("queue:\n  ack_wait: 030\n", "queue.ack_wait", 2),
    ("api:\n  port: 9000\nworker:\n  concurrency: 010\n", "worker.concurrency", 4),
    ("auth:\n  tokens:\n    - {name: ci, token: 0777, role: viewer}\n", "auth.tokens[0].token", 3),
], ids=["duration", "count", "secret"])
def test_a_zero_padded_number_is_refused_naming_its_key(tmp_path: Path, text: str, key: str, line: int) -> None:
    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    for verb in (["config", "show"], ["doctor"], ["up", "--port", "1"]):
        result = gamead(*verb, "--config", "c.yaml", cwd=tmp_path)
        assert result.returncode == exitcodes.CONFIG, (verb, result.stderr)
        said = one_red_line(result, f"c.yaml: {key} (line {line}): a number written with a leading 0 is octal")
        assert "0777" not in said and "511" not in said  # the value, maybe a secret, is never shown


def test_written_plainly_or_quoted_it_is_read_as_written(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("queue:\n  ack_wait: 30\nworker:\n  concurrency: '010'\napi:\n  port: 0\n",
                                     encoding="utf-8")
    result = gamead("config", "show", "--config", "c.yaml", "-o", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["queue"]["ack_wait"], shown["worker"]["concurrency"], shown["api"]["port"]) == (30, 10, 0)
