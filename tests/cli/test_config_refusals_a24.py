"""attack24 #2 and #4 through the real ``gamead``: a ``worker.faults.match`` RE2 refuses and a number past its
bound are one ``error:`` line naming the setting, exit 5 (README: "a bad value is one `error:` line … exit 5"),
before anything starts. Before: ``config show`` gave 0 for both, ``serve`` retried for ever on an OverflowError
traceback, and every ad died of "missing ), unterminated subpattern"."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from gamead_cli import exitcodes
from tests.support import clean_env, run_gamead

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _one_config_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == exitcodes.CONFIG == 5, (result.returncode, result.stderr)
    lines = _ANSI.sub("", result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid configuration: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(("variable", "value", "fragments"), [
    ("GAMEAD_WORKER__FAULTS__MATCH", "(", ("worker.faults.match (GAMEAD_WORKER__FAULTS__MATCH=()",
                                           "not a valid RE2 regular expression: missing )")),
    ("GAMEAD_WORKER__FAULTS__MATCH", "(?<=a)b", ("worker.faults.match", "not a valid RE2 regular expression")),
    ("GAMEAD_REGISTRY__TTL", "1e300", ("registry.ttl (GAMEAD_REGISTRY__TTL=1e300)", "must be 1ms to 1d, not 1e300")),
    ("GAMEAD_API__MAX_BODY_BYTES", "99999999999999999999999", ("api.max_body_bytes (GAMEAD_API__MAX_BODY_BYTES=",
                                                               "must be 1,024 to 67,108,864, not 99,")),
])
def test_config_show_refuses_it_in_one_line_exit_5(tmp_path: Path, variable: str, value: str,
                                                    fragments: tuple[str, ...]) -> None:
    _one_config_error(run_gamead("config", "show", env=clean_env(**{variable: value}), cwd=tmp_path, timeout=60),
                      *fragments)


def test_serve_refuses_an_out_of_range_ttl_before_it_reaches_nats(tmp_path: Path) -> None:
    """Before: NATS reachable, `serve` logged an OverflowError traceback every second for ever; here no NATS is
    needed at all: the refusal comes first (the deadline is the test's, not the command's)."""
    result = run_gamead("serve", "--port", "0", "--nats-url", "nats://127.0.0.1:9", env=clean_env(
        GAMEAD_REGISTRY__TTL="1e300"), cwd=tmp_path, timeout=60)
    _one_config_error(result, "registry.ttl (GAMEAD_REGISTRY__TTL=1e300)")
