"""attack32a F3, F7, F9: CLI odds.

* F3: ``--api`` (or ``GAMEAD_API_URL``) holding a control character (a tab cut from a TSV file, ``\\x7f``, an
  escape) was exit 1 ``api_error``, found by the first request; now the one URL rule refuses it before any
  request: exit 2 ``bad_usage`` naming ``--api``; from the environment, the config file or a running stack's
  ``gamead-up.json``, exit 5 naming where it came from (as every other bad value there).
* F7: ``gamead submit … | true`` queued the ad, exited 1 and said nothing (a ``pipefail`` loop queued it again);
  now a write verb whose stdout's reader is gone says once on stderr what it did, as for ``>&-``.
* F9: ``gamead audit``'s next-page hint was ``older: --cursor 19``; now it is the whole command, with the filters
  in force and ``--api``, and it runs as printed.

Real ``gamead`` processes; a real API on its own NATS where a request is made."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gamead_cli import exitcodes
from gamead_core.embedded import EmbeddedNats
from tests.forked_popen import reader_gone
from tests.support import Proc, clean_env, run_gamead, start_api

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CONTROLS = ("\t", "\x7f", "\x1b[2J")


def gamead(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_gamead(*args, env=clean_env(**env), cwd=cwd, timeout=60, errors="replace")


def red_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = _ANSI.sub("", result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def test_an_api_url_with_a_control_character_is_refused_before_any_request_from_every_source(
        tmp_path: Path, closed_api_url: str) -> None:
    for control in _CONTROLS:
        url = f"{closed_api_url}/{control}"
        flag = gamead("ads", "list", "--api", url, "-o", "json", cwd=tmp_path)
        assert flag.returncode == exitcodes.USAGE, (control, flag.stderr)  # was 1, api_error
        assert red_line(flag).startswith("error: --api: ") and "control character" in red_line(flag), flag.stderr
        assert json.loads(flag.stdout)["error"]["code"] == "bad_usage", flag.stdout
        env = gamead("workers", cwd=tmp_path, GAMEAD_API_URL=url)
        assert env.returncode == exitcodes.CONFIG, (control, env.stderr)  # was 1, as the flag
        assert "GAMEAD_API_URL" in red_line(env) and "control character" in red_line(env), env.stderr
    config = tmp_path / "config.yaml"
    config.write_text(f'client:\n  api_url: "{closed_api_url}/\\t"\n', encoding="utf-8")
    from_file = gamead("workers", "--config", str(config), cwd=tmp_path)
    assert from_file.returncode == exitcodes.CONFIG and "client.api_url" in red_line(from_file), from_file.stderr
    config.unlink()
    # a running stack's gamead-up.json (this test's own process stands for its live `up`)
    stack = tmp_path / ".gamead"
    stack.mkdir()
    (stack / "gamead-up.json").write_text(json.dumps({"pid": os.getpid(), "apiUrl": f"{closed_api_url}/\x1b[2J"}))
    found = gamead("workers", cwd=tmp_path)
    assert found.returncode == exitcodes.CONFIG, found.stderr  # was 1, api_error
    assert "gamead-up.json" in red_line(found) and "control character" in red_line(found), found.stderr


@pytest.fixture
def lone_api(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> str:
    """An API of its own, with no worker: its audit trail and scale override are this test's alone."""
    api, url = start_api(fresh_nats().url, tmp_path)
    procs.append(api)
    return url




def test_a_write_whose_stdout_reader_is_gone_says_once_what_it_did(lone_api: str) -> None:
    for output in ("table", "json"):
        done = reader_gone("submit", "--title", f"Pipe gone {output}", "--genre", "RPG", "--api", lone_api,
                            "-o", output)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == exitcodes.READER_GONE and len(lines) == 1, (output, done.stderr)  # was: nothing said
        assert lines[0].startswith("error: cannot write the output to stdout (its reader is gone); the ad WAS "
                                   "queued: id "), lines
        ad_id = lines[0].split(" id ", 1)[1].split(";", 1)[0]
        assert httpx.get(f"{lone_api}/ads/{ad_id}", timeout=10).status_code == 200
    scaled = reader_gone("scale", "set", "2", "--for", "5m", "--api", lone_api)
    assert scaled.returncode == exitcodes.READER_GONE, scaled.stderr
    assert "; the override WAS set: 2 workers until " in scaled.stderr, scaled.stderr
    cleared = reader_gone("scale", "clear", "--api", lone_api)
    assert cleared.returncode == exitcodes.READER_GONE and "; the override WAS cleared" in cleared.stderr, cleared.stderr
    # a read whose reader left is quiet, as Unix tools are
    listed = reader_gone("ads", "list", "--api", lone_api)
    assert (listed.returncode, listed.stderr) == (exitcodes.READER_GONE, "")


def test_the_audit_next_page_is_the_whole_command_and_runs_as_printed(lone_api: str, tmp_path: Path) -> None:
    for replicas in ("1", "2", "3"):
        assert gamead("scale", "set", replicas, "--for", "5m", "--api", lone_api, cwd=tmp_path).returncode == 0
    first = gamead("audit", "--action", "scale.set", "--limit", "1", "--api", lone_api, cwd=tmp_path,
                   COLUMNS="200")
    assert first.returncode == 0, first.stderr
    assert "--cursor" in first.stdout and "older: --cursor" not in first.stdout, first.stdout  # was a bare flag
    command = [line for line in first.stdout.splitlines() if " audit --cursor " in line]
    assert len(command) == 1, first.stdout
    argv = shlex.split(command[0])
    assert argv[1:3] == ["audit", "--cursor"], argv
    assert {"--action": "scale.set", "--limit": "1", "--api": lone_api}.items() <= dict(zip(argv, argv[1:])).items()
    second = gamead(*argv[1:], cwd=tmp_path, COLUMNS="200")
    assert second.returncode == 0, second.stderr
    assert "1 record(s) (after the cursor), newest first" in second.stdout and second.stdout != first.stdout, \
        second.stdout  # figures43: a page after a cursor says so


URLS = {"GAMEAD_API_URL": "http://127.0.0.1:8080", "GAMEAD_REDIS__URL": "redis://127.0.0.1:6379/0",
        "GAMEAD_NATS__URL": "nats://127.0.0.1:4222"}


def test_every_url_setting_has_one_rule_spaces_around_dropped_a_control_character_refused(tmp_path: Path) -> None:
    """attack57b: ``GAMEAD_API_URL=$'http://…\\r'`` (a CRLF env file's line end) was refused, exit 5, while the same
    ``\\r`` ended ``redis.url`` and ``nats.url`` unseen, and a tab inside a Redis URL was dropped by urllib (``63\\t79``
    connected to 6379). Before: 4 of the 6 control-character cases below exit 0; now each is one red line naming
    the variable and the character, exit 5, and spaces around every one of them are dropped, as the README says."""
    for variable, url in URLS.items():
        for bad in (f"{url}\r", f"{url[:-2]}\t{url[-2:]}"):
            refused = gamead("config", "show", cwd=tmp_path, **{variable: bad})
            assert refused.returncode == exitcodes.CONFIG, (variable, bad, refused.stdout)
            line = red_line(refused)
            assert variable in line and "holds the control character" in line, line
        spaced = gamead("config", "show", "-o", "json", cwd=tmp_path, **{variable: f"  {url} "})
        assert spaced.returncode == 0, spaced.stderr
        shown = json.loads(spaced.stdout)
        section = "client" if variable == "GAMEAD_API_URL" else variable.split("_")[1].lower()
        assert shown[section]["api_url" if section == "client" else "url"] == url, (variable, shown[section])
