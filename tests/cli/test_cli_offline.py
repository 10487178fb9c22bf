"""CLI behaviour that needs no running service: errors as one red line, local input checks, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gamead_cli import exitcodes
from gamead_cli.main import app

from tests.support import RPG_AD

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def unstyle(text: str) -> str:
    return _ANSI.sub("", text)


pytestmark = pytest.mark.usefixtures("isolated_env")

AD = RPG_AD


def error_lines(result: Result) -> list[str]:
    return unstyle(result.stderr).strip().splitlines()


def assert_one_error_line(result: Result, *fragments: str) -> str:
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def ad_file(tmp_path: Path) -> Path:
    path = tmp_path / "ad.json"
    path.write_text(json.dumps(AD), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["ads", "get", "01m87v538ce744cfgethvyb39n"],
        ["ads", "list"],
        ["ads", "list", "-o", "json"],
        ["submit", "--title", "x", "--genre", "rpg", "-o", "json"],
        ["submit", "--count", "3"],
    ],
    ids=["ads-get", "ads-list", "ads-list-json", "submit", "submit-count"],
)
def test_api_down_is_one_red_line_and_exit_3(runner: CliRunner, closed_api_url: str, args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--api", closed_api_url])
    assert result.exit_code == exitcodes.UNREACHABLE, result.output
    line = assert_one_error_line(result, closed_api_url, "connection refused", "GAMEAD_API_URL")
    assert "gamead up" in line
    if "json" in args:  # -o json: the same failure as one JSON document for scripts (brief cli13)
        assert json.loads(result.stdout)["error"]["code"] == "api_unreachable", result.stdout
    else:
        assert result.stdout == ""


def test_api_url_from_env(runner: CliRunner, closed_api_url: str) -> None:
    result = runner.invoke(app, ["ads", "get", "01m87v538ce744cfgethvyb39n"], env={"GAMEAD_API_URL": closed_api_url})
    assert result.exit_code == exitcodes.UNREACHABLE
    assert_one_error_line(result, closed_api_url)


def test_submit_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    result = runner.invoke(app, ["submit", str(missing)])
    assert result.exit_code == exitcodes.USAGE  # the README: a missing file is bad usage
    assert_one_error_line(result, "nope.json", "does not exist")


def test_submit_invalid_json(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"title": "x",\n  "genre": }', encoding="utf-8")
    result = runner.invoke(app, ["submit", str(bad)])
    assert result.exit_code == exitcodes.USAGE  # bad input, as in dlq import and top --replay (was 1)
    assert_one_error_line(result, "bad.json:2:", "not valid JSON")


@pytest.mark.parametrize("argv", [["submit", "ad.json"], ["submit", "ads.ndjson"], ["dlq", "import", "dead.jsonl"]])
def test_a_utf8_bom_does_not_move_the_byte_a_message_names(runner: CliRunner, tmp_path: Path, closed_api_url: str,
                                                          monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    """small56: a byte-order mark (which a Windows editor writes and no editor shows) made ``not UTF-8 text (byte
    14)`` of the byte an editor shows as 11, while the number's byte a file with one names was counted after it.
    Every reader of an input file names the same bytes the same with it and without it, exit 2."""
    monkeypatch.chdir(tmp_path)
    said = []
    for bom in (b"", b"\xef\xbb\xbf"):
        for text, words in ((b'{"adId": "x\xff"}\n', "not UTF-8 text (byte 11)"),
                            (b'{"adId": 1e999}\n', "the number at byte 9 (1e999)")):
            (tmp_path / argv[-1]).write_bytes(bom + text)
            result = runner.invoke(app, [*argv, "--api", closed_api_url])
            assert result.exit_code == exitcodes.USAGE, result.output
            said.append(assert_one_error_line(result, f"{argv[-1]}:1: ", words))  # before, with a BOM: byte 14
    assert said[:2] == said[2:]


def test_submit_invalid_json_on_stdin(runner: CliRunner) -> None:
    result = runner.invoke(app, ["submit", "-"], input="not json")
    assert result.exit_code == exitcodes.USAGE
    assert_one_error_line(result, "stdin", "not valid JSON")


def test_submit_json_must_be_an_object(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]", encoding="utf-8")
    result = runner.invoke(app, ["submit", str(path)])
    assert result.exit_code == exitcodes.USAGE
    assert_one_error_line(result, "one JSON object")


def test_submit_nothing_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["submit"])
    assert result.exit_code == exitcodes.USAGE
    assert_one_error_line(result, "nothing to submit")


def test_submit_priority_out_of_range_is_rejected_by_the_cli(runner: CliRunner, ad_file: Path) -> None:
    result = runner.invoke(app, ["submit", str(ad_file), "--priority", "9"])
    assert result.exit_code == exitcodes.USAGE
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["submit", "--help"],
        ["ads", "--help"],
        ["ads", "get", "--help"],
        ["ads", "list", "--help"],
        ["config", "show", "--help"],
        ["config", "--help"],
    ],
)
def test_help_has_an_example(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    assert "gamead " in result.stdout
    assert "Example" in result.stdout


@pytest.mark.parametrize(("name", "text", "args"), [
    ("ads.ndjson", '{"title": "A", "genre": "RPG"}\n{"title": "B", "genre": "RPG"}\n', []),
    ("ads.json", '[{"title": "A", "genre": "RPG"}, {"title": "B", "genre": "RPG"}]', []),
    (None, None, ["--count", "3"]),
])
def test_submit_quiet_refusal_names_what_was_given(runner: CliRunner, tmp_path: Path, name: str | None,
                                                    text: str | None, args: list[str]) -> None:
    """attack54: ``-q`` with an NDJSON file (or a JSON array) was refused 'it does not go with --count', a flag
    never given: the refusal names the input that holds several ads."""
    files = []
    if name is not None and text is not None:
        (path := tmp_path / name).write_text(text, encoding="utf-8")
        files = [str(path)]
    result = runner.invoke(app, ["submit", *files, *args, "-q"])
    assert result.exit_code == exitcodes.USAGE
    line = assert_one_error_line(result, "prints the id of one ad")
    assert ("--count" in line) == (name is None), line
