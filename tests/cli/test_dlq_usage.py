"""`gamead dlq …` with bad input (issue 10 item 6): never a traceback, exit 2 (bad usage) before any request.

Each case runs against a closed port: exit 2 rather than 3 also proves nothing was sent to the API.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gamead_cli.main import app as cli


def _bad_file(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


CASES = [
    (["dlq", "import", "{binary}"], ":1: not UTF-8 text (byte 0: a NUL byte"),
    (["dlq", "import", "{latin1}"], ":1: not UTF-8 text"),
    (["dlq", "import", "{nested}"], "nested too deeply"),
    (["dlq", "import", "{array}"], ":1: not a JSON object"),
    (["dlq", "import", "{missing}"], "does not exist"),
    (["dlq", "list", "--since", "99999999d"], "--since must be 0 to 3650d, not 99999999d"),
    (["dlq", "list", "--since", "2x"], "cannot read time '2x'"),
    (["dlq", "list", "--until", "yesterday"], "cannot read time 'yesterday'"),
    # attacker: sent, and the API's 422 made exit 1; now refused here by the API's own rule (times.read_utc)
    (["dlq", "list", "--since", "0001-01-01T00:00:00+14:00"], "out of range once converted to UTC"),
    (["audit", "--until", "0001-01-01T00:00:00+01:00"], "out of range once converted to UTC"),
    (["dlq", "export", "-", "--until", "10:00"], "must be an ISO-8601 time"),
    # reviewer V10, N3: a reversed window printed "the DLQ is empty" and exited 0
    (["dlq", "list", "--since", "2h", "--until", "3h"], "is not before --until 3h"),
    (["dlq", "export", "-", "--since", "2026-01-02", "--until", "2026-01-01"], "is not before --until"),
    (["dlq", "purge", "--since", "1d", "--until", "1d", "--yes"], "is not before --until"),
    (["audit", "--since", "2h", "--until", "3h"], "is not before --until 3h"),
    (["dlq", "show", ""], "is not an ad id"),
    (["dlq", "show", "../stats"], "is not an ad id"),
    (["dlq", "show", "*"], "is not an ad id"),
    (["dlq", "export", "{missing_dir}"], "cannot write"),
    (["dlq", "purge"], "say which entries"),
    (["dlq", "replay"], "say which entries"),
    (["dlq", "replay", "--all", "--priority", "2"], "exactly one of these"),
    (["dlq", "replay", "../stats"], "is not an ad id"),
    (["dlq", "purge", "01m87v538ce744cfgethvyb39n", "a" * 4000, "--yes"], "is not an ad id"),
    (["dlq", "cancel", "../x"], "is not a job id"),
    (["dlq", "jobs", "x y"], "is not a job id"),
    (["dlq", "jobs", "--kind", "resurrect"], "--kind must be one of replay, purge, import or repair, not 'resurrect'"),
    (["dlq", "jobs", "--state", "zombie"], "--state must be one of queued, running"),
    # attack60: an empty filter (`--message "$UNSET"`) was sent: `purge --message '' --yes` purged every entry
    # (1,331 of 1,331) without --all, and `list --error-class ''` listed all while `purge --error-class ''` matched 0
    (["dlq", "purge", "--message", "", "--yes"], "--message: is empty"),
    (["dlq", "replay", "--message", "", "--yes"], "--message: is empty"),
    (["dlq", "purge", "--error-class", "", "--yes"], "--error-class: is empty"),
    (["dlq", "list", "--error-class", ""], "--error-class: is empty"),
    (["dlq", "list", "--message", ""], "--message: is empty"),
    (["dlq", "export", "-", "--message", ""], "--message: is empty"),
]


@pytest.mark.parametrize("args, says", CASES, ids=[" ".join(a)[:50] for a, _ in CASES])
def test_bad_dlq_usage_exits_2_with_its_reason_and_no_traceback(
    args: list[str], says: str, tmp_path: Path, closed_api_url: str, isolated_env: Path,
) -> None:
    files = {
        "binary": _bad_file(tmp_path, "dead.bin", bytes(range(256)) * 4),
        "nested": _bad_file(tmp_path, "nested.jsonl", b"[" * 20_000 + b"]" * 20_000 + b"\n"),
        "latin1": _bad_file(tmp_path, "latin1.jsonl", '{"title": "café"}\n'.encode("latin-1")),
        "array": _bad_file(tmp_path, "array.jsonl", b"[1, 2]\n"),
        "missing": str(tmp_path / "no-such.jsonl"),
        "missing_dir": str(tmp_path / "no-such-dir" / "dead.jsonl"),
    }
    argv = [a.format(**files) if a.startswith("{") else a for a in args]
    result = CliRunner().invoke(cli, [*argv, "--api", closed_api_url])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    text = result.output.translate({ord(c): " " for c in "│╭╮╰╯─"})  # Click's usage box, if any
    assert "".join(says.split()) in "".join(text.split()), result.output  # however the box wrapped it


@pytest.mark.parametrize("verb", ["list", "show", "replay", "purge", "jobs", "cancel", "export", "import"])
def test_every_dlq_verb_has_help_with_an_example(verb: str) -> None:
    result = CliRunner().invoke(cli, ["dlq", verb, "--help"])
    text = " ".join(result.stdout.split())  # `Example: gamead dlq …`, or a block `Examples` of one command a line
    assert result.exit_code == 0 and ("Example: gamead dlq " in text or "Examples gamead dlq " in text), text
