"""Brief cli13: CLI edges a newcomer and an attacker found. Each case runs the real ``gamead`` in a subprocess, as
a user would (a real API where the behaviour needs one; a closed port where the API must be away)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from gamead_cli import exitcodes
from tests.support import clean_env, run_gamead

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
AD = {"title": "Sky Saga", "description": "An epic RPG.", "genre": "RPG", "callToAction": "Play", "duration": 30}


def gamead(*args: str, cwd: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return run_gamead(*args, env=clean_env(**env), cwd=cwd, timeout=timeout, errors="replace")


def red_line(result: subprocess.CompletedProcess[str]) -> str:
    """stderr's one ``error: …`` line (and no traceback)."""
    lines = _ANSI.sub("", result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


# --- 1: a verb that fails leaves the file it would have written as it was ---------------------------------------


def test_a_failed_export_or_recording_leaves_the_old_file_intact(tmp_path: Path, closed_api_url: str) -> None:
    old = '{"kept": true}\n'
    for args in (["dlq", "export", "y.jsonl"], ["top", "--once", "--record", "y.jsonl"]):
        (tmp_path / "y.jsonl").write_text(old, encoding="utf-8")
        result = gamead(*args, "--api", closed_api_url, cwd=tmp_path)
        assert result.returncode == exitcodes.UNREACHABLE, result.stderr  # was: y.jsonl emptied
        red_line(result)
        assert (tmp_path / "y.jsonl").read_text(encoding="utf-8") == old, args
        assert sorted(p.name for p in tmp_path.iterdir()) == ["y.jsonl"], args  # no temporary file left


def test_a_new_file_is_not_created_by_a_failed_export(tmp_path: Path, closed_api_url: str) -> None:
    result = gamead("dlq", "export", "new.jsonl", "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.UNREACHABLE and list(tmp_path.iterdir()) == [], result.stderr


# --- 2: no option string is declared twice by any command ----------------------------------------------------


def _every_command() -> list[tuple[str, object]]:
    """``(path, click command)`` of the root, every command and every sub-command, each loaded as ``gamead`` loads
    it when used (:func:`gamead_cli.command_table.load_command`)."""
    import typer

    from gamead_cli.command_table import COMMANDS, load_command
    from gamead_cli.main import app

    found: list[tuple[str, object]] = [("gamead", typer.main.get_command(app))]
    todo = [(f"gamead {name}", load_command(name)) for name in COMMANDS]
    while todo:
        path, command = todo.pop()
        found.append((path, command))
        todo.extend((f"{path} {name}", sub) for name, sub in (getattr(command, "commands", None) or {}).items())
    return found


def test_no_command_declares_an_option_string_twice() -> None:
    commands = _every_command()
    assert len(commands) > 25  # every verb and sub-command (28 when written)
    clashes = []
    for path, command in commands:
        seen: dict[str, str] = {}
        for param in command.get_params(_context(command)):  # type: ignore[attr-defined]
            for opt in [*param.opts, *param.secondary_opts]:
                if not opt.startswith("-"):
                    continue  # an argument's name
                if opt in seen:
                    clashes.append(f"{path}: {opt} is both {seen[opt]} and {param.name}")
                seen[opt] = param.name
    assert not clashes  # was: `gamead ads list`: -c is both cursor and config


def _context(command: object) -> object:
    import click

    return click.Context(command)  # type: ignore[arg-type]


def test_ads_list_short_c_is_the_config_file(tmp_path: Path) -> None:
    result = gamead("ads", "list", "-c", "nowhere.yaml", cwd=tmp_path)
    assert result.returncode == exitcodes.CONFIG and "nowhere.yaml" in red_line(result), result.stderr


# --- 3: under -o json every failure is also one JSON document on stdout -----------------------------------------


def _error_document(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """stdout's one JSON document ``{"error": {…}}`` (and stderr's one red line saying the same)."""
    doc = json.loads(result.stdout)  # the whole of stdout: one document
    error = doc["error"]
    assert set(doc) == {"error"} and error["exitCode"] == result.returncode, doc
    assert error["message"] in red_line(result), (error, result.stderr)
    return error


def test_every_failure_under_o_json_is_one_json_document(tmp_path: Path, closed_api_url: str, api_url: str) -> None:
    missing = "01jb2x4k7m9p3q5r8s0t2v4w6y"
    cases = [  # (argv, exit code, error code)
        (["ads", "get", missing, "-o", "json", "--api", api_url], exitcodes.NOT_FOUND, "not_found"),
        (["workers", "-o", "json", "--api", closed_api_url], exitcodes.UNREACHABLE, "api_unreachable"),
        (["submit", "--count", "3000", "--output=json", "--api", closed_api_url], exitcodes.UNREACHABLE,
         "api_unreachable"),
        (["dlq", "list", "-oJSON", "--api", closed_api_url], exitcodes.UNREACHABLE, "api_unreachable"),
        (["ads", "list", "--limit", "0", "-o", "json"], exitcodes.USAGE, "bad_usage"),  # refused while parsing
        (["ads", "get", "a.b", "-o", "json"], exitcodes.USAGE, "bad_usage"),
    ]
    for argv, exit_code, code in cases:
        result = gamead(*argv, cwd=tmp_path)
        assert result.returncode == exit_code, (argv, result.stderr)
        assert _error_document(result)["code"] == code, argv
    table = gamead("workers", "--api", closed_api_url, cwd=tmp_path)  # for people: stdout stays empty
    assert table.returncode == exitcodes.UNREACHABLE and table.stdout == "", table.stdout


# --- 4: --api that is not an http(s) URL is bad usage; GAMEAD_API_URL of the same is bad configuration ----------


#: A drill (session 24): a query or fragment was taken, and each request's path was added after it.
_NOT_A_BASE = ("http://127.0.0.1:8080/?x=1", "http://127.0.0.1:8080#top", "http://127.0.0.1:8080/?")


def test_an_api_flag_that_is_no_http_url_is_bad_usage(tmp_path: Path) -> None:
    cases = [(["workers"], url) for url in ("notaurl", "ftp://x", "http://", "http://h:99999", *_NOT_A_BASE)]
    for verb, url in [*cases, (["submit", "--count", "2"], "notaurl"), (["top", "--once"], "ftp://x"),
                      (["ads", "list"], _NOT_A_BASE[0])]:
        result = gamead(*verb, "--api", url, cwd=tmp_path)
        assert result.returncode == exitcodes.USAGE, (verb, url, result.stderr)  # was 1
        assert red_line(result).startswith("error: --api: "), result.stderr
    for url in ("ftp://x", *_NOT_A_BASE):
        result = gamead("workers", cwd=tmp_path, GAMEAD_API_URL=url)
        assert result.returncode == exitcodes.CONFIG and "GAMEAD_API_URL" in red_line(result), result.stderr
    assert "has a query (?…) or a fragment (#…)" in red_line(result), result.stderr


# --- 5: an idempotency key the API would refuse is refused before anything is sent ------------------------------


def test_an_idempotency_key_the_api_refuses_is_bad_usage_before_sending(tmp_path: Path, closed_api_url: str) -> None:
    """The API's port is closed: a request would say "cannot reach" (exit 3) instead."""
    (tmp_path / "ad.json").write_text(json.dumps(AD), encoding="utf-8")
    for args in (["ad.json", "--idempotency-key", "a,b"],  # was: sent, 400 duplicate_header, exit 1
                 ["ad.json", "--idempotency-key", "tab\there"],
                 ["ad.json", "--idempotency-key", "k" * 201],
                 ["--count", "10", "--idempotency-key", "k" * 199],  # KEY-9 is 201 characters
                 # drill attack25 finding 5: "unexpected UnicodeEncodeError", exit 1 (the single POST's header),
                 # while --count sent the same key in batch items; one rule (printable ASCII) on every path now
                 ["--title", "Uni key", "--genre", "RPG", "--idempotency-key", "ключ-😀"],
                 ["ad.json", "--idempotency-key", "ключ-😀"],
                 ["--count", "3", "--idempotency-key", "ключ2"]):
        result = gamead("submit", *args, "--api", closed_api_url, cwd=tmp_path)
        assert result.returncode == exitcodes.USAGE, (args, result.stderr)
        assert "--idempotency-key" in red_line(result), result.stderr
        assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr
        if "ключ" in args[-1]:
            assert "printable ASCII" in red_line(result) and "U+043A" in red_line(result), result.stderr
    fine = gamead("submit", "ad.json", "--idempotency-key", "k" * 200, "--api", closed_api_url, cwd=tmp_path)
    assert fine.returncode == exitcodes.UNREACHABLE, fine.stderr  # a key the API takes is sent


# --- 6: a JSON file that is not a recording says so, whether it is one line or several ---------------------------


def test_replay_of_a_json_file_that_is_no_recording_says_so(tmp_path: Path) -> None:
    files = {"ad.json": json.dumps(AD, indent=2),  # valid JSON of 7 lines: was "ad.json:1: not valid JSON"
             "one.json": json.dumps(AD), "list.json": "[1, 2]"}
    for name, text in files.items():
        (tmp_path / name).write_text(text + "\n", encoding="utf-8")
        result = gamead("top", "--replay", name, "--once", cwd=tmp_path)
        assert result.returncode == exitcodes.USAGE, result.stderr
        line = red_line(result)
        assert f"{name}:1: not a gamead top recording (" in line and "not valid JSON" not in line, line
    (tmp_path / "broken.json").write_text('{\n  "title": \n', encoding="utf-8")  # not JSON at all: says so
    assert "broken.json:1: not valid JSON" in red_line(gamead("top", "--replay", "broken.json", "--once",
                                                              cwd=tmp_path))


# --- 7: an NDJSON file not JSON from its first line is refused whole (2); a later bad line is that ad rejected (1) --


def test_ndjson_refused_whole_or_one_line_as_the_readme_says(tmp_path: Path, closed_api_url: str,
                                                             api_url: str) -> None:
    (tmp_path / "first.ndjson").write_text("not json\n" + json.dumps(AD) + "\n", encoding="utf-8")
    result = gamead("submit", "first.ndjson", "--api", closed_api_url, cwd=tmp_path)  # nothing is sent
    assert result.returncode == exitcodes.USAGE and "first.ndjson:1: not valid JSON" in red_line(result)
    (tmp_path / "m.ndjson").write_text(json.dumps(AD) + "\nnot json\n" + json.dumps(AD) + "\n", encoding="utf-8")
    result = gamead("submit", "m.ndjson", "-o", "json", "--api", api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.ERROR, result.stderr
    items = json.loads(result.stdout)["items"]
    assert [(i["where"], i["outcome"], i.get("code")) for i in items] == [
        ("m.ndjson:1", "accepted", None), ("m.ndjson:2", "rejected", "invalid_json"), ("m.ndjson:3", "accepted", None)]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "a later bad line is that one ad rejected, `invalid_json`, and the others are sent: exit 1" in readme


# --- 8: a ULID in capitals is the same id, on the command line and in an API path -------------------------------


def test_an_id_in_capitals_is_the_same_id(tmp_path: Path, api_url: str) -> None:
    import httpx

    (tmp_path / "ad.json").write_text(json.dumps(AD), encoding="utf-8")
    sent = gamead("submit", "ad.json", "-q", "--api", api_url, cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    ad_id = sent.stdout.strip()
    shown = gamead("ads", "get", ad_id.upper(), "-o", "json", "--api", api_url, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr  # was: exit 2, "not an ad id"
    assert json.loads(shown.stdout)["id"] == ad_id
    assert httpx.get(f"{api_url}/ads/{ad_id.upper()}", timeout=10).json()["id"] == ad_id
    for args in (["dlq", "show", ad_id.upper()], ["dlq", "jobs", "01JB2X4K7M9P3Q5R8S0T2V4W6Y"]):
        missing = gamead(*args, "--api", api_url, cwd=tmp_path)  # read, not refused: none exists
        assert missing.returncode == exitcodes.NOT_FOUND, (args, missing.stderr)
    bad = gamead("ads", "get", "01M8RVR27Y8SZ43D85C33HH2CU", "--api", api_url, cwd=tmp_path)  # U: not base32
    assert bad.returncode == exitcodes.USAGE and "'01M8RVR27Y8SZ43D85C33HH2CU'" in red_line(bad)
