"""Issue 10 item 6 and 7: no traceback ever, exit codes as the README says, and a fast ``gamead --help``.

Most cases run the real ``gamead`` executable in a subprocess, as a user would: the boundary under test is
the whole entry point (stream encodings, env vars, argv), not a function.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gamead_cli import exitcodes
from gamead_cli.main import app
from tests.forked_popen import GameadPopen
from tests.support import clean_env, gamead_argv, run_gamead, sigint_reaches_it, wait_for

README = Path(__file__).resolve().parents[2] / "README.md"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def gamead(*args: str, cwd: Path, timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    return run_gamead(*args, env=clean_env(**env), cwd=cwd, timeout=timeout, errors="replace")


def one_red_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The whole stderr is one ``error: …`` line holding every fragment; no traceback anywhere."""
    lines = _ANSI.sub("", result.stderr).strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


# --- bad input files: one line, and exit 2 (bad input: README) for bad content as for a file that cannot be read --


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"title": "x", "duration": NaN}', "NaN"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": ' * 50 + "1" + "}" * 50, "nested too deeply"),
        ("\x00\xff\xfe binary", "not UTF-8"),
    ],
    ids=["nan", "deep-100000", "deep-50", "binary"],
)
def test_submit_of_a_bad_file_is_one_line_and_exit_2(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "ad.json"
    path.write_bytes(content.encode("latin-1"))
    result = gamead("submit", str(path), cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE  # was 1; dlq import and top --replay said 2 (ops12a)
    one_red_line(result, "ad.json", fragment)


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("empty.ndjson", b"", "empty.ndjson: holds no ad"),
        ("blank.ndjson", b"\n  \n\n", "blank.ndjson: holds no ad"),
        ("empty.json", b" \n", "empty.json: holds no ad"),
        ("array.json", b"[]", "array.json: holds no ad"),
        ("-", b"", "stdin: holds no ad"),
        ("--ndjson -", b"", "stdin: holds no ad"),
        ("str.json", b'"just a string"', "str.json: must hold one JSON object (the ad) or an array of them, not a "
                                         "string"),
        ("num.json", b"42", "or an array of them, not a number"),
        ("items.json", b'[{"title": "x"}, null]', "items.json[1]: is null, not an ad"),
    ],
    ids=["empty-ndjson", "blank-ndjson", "blank-json", "empty-array", "empty-stdin", "empty-stdin-ndjson",
         "a-string", "a-number", "a-null-item"],
)
def test_an_input_with_no_ad_is_one_rule_in_json_words(tmp_path: Path, name: str, content: bytes, line: str) -> None:
    """attack45 F12: no ad in the input was answered three ways (an empty NDJSON file: ``sent 0``, exit 0; ``[]``:
    ``holds an empty array``; empty stdin: ``not valid JSON (Expecting value …)``), and a string said Python's
    ``not str``. Now every one is exit 2, ``<source>: holds no ad``, nothing sent; a JSON value says JSON's name.
    Stdin is empty (/dev/null) here; no API is asked (port 1)."""
    if not name.endswith("-"):
        (tmp_path / name).write_bytes(content)
    result = gamead("submit", *name.split(), "--api", "http://127.0.0.1:1", cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stdout + result.stderr
    one_red_line(result, line)


def test_submit_of_dev_zero_reads_a_bounded_amount(tmp_path: Path) -> None:
    """Refused before a byte is read (files14: every input file must be a regular file, as --config must)."""
    result = gamead("submit", "/dev/zero", cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE
    one_red_line(result, "/dev/zero", "not a regular file")


@pytest.mark.parametrize("path", ["missing.json", "."], ids=["missing", "a-directory"])
def test_submit_of_a_file_that_cannot_be_read_is_bad_usage(tmp_path: Path, path: str) -> None:
    result = gamead("submit", path, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE
    one_red_line(result, path, "gamead submit --help")


# --- configuration: exit 5 for every malformed source ---------------------------------------------------


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"GAMEAD_AUTH__TOKENS": "not json"}, "GAMEAD_AUTH__TOKENS is not valid JSON"),
        ({"GAMEAD_WORKER": "x"}, "GAMEAD_WORKER is not valid JSON"),
        ({"GAMEAD_WORKER__CONCURRENCY": "many"}, "worker.concurrency"),
        ({"GAMEAD_TOKEN": "jéton"}, "GAMEAD_TOKEN"),
        # the API's address set under the api section's own name: the line names the variable meant
        ({"GAMEAD_API": "http://127.0.0.1:8080"}, "GAMEAD_API sets the whole 'api' section: did you mean GAMEAD_API_URL?"),
    ],
    ids=["tokens-not-json", "section-not-json", "not-a-number", "non-ascii-token", "api-url-as-section"],
)
def test_a_malformed_env_value_is_a_config_error(tmp_path: Path, env: dict[str, str], fragment: str) -> None:
    result = gamead("ads", "list", cwd=tmp_path, **env)
    assert result.returncode == exitcodes.CONFIG
    one_red_line(result, fragment)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\x7fELF\x02\x01\x01\x00\xd0\xff binary", "not UTF-8"),
        (b"wokrer:\n  concurrency: 2\n", "unknown top-level key 'wokrer' (did you mean 'worker'?)"),
        (b"worker:\n  concurency: 2\n", "worker.concurency"),
        (b"- a list\n", "mapping"),
        (b"worker:\n  concurrency: 2\n  drain_timeout: 5\n  concurrency: 8\n",
         "key 'worker.concurrency' is written twice (line 2 and line 4)"),
    ],
    ids=["binary", "unknown-top-level-key", "unknown-nested-key", "not-a-mapping", "duplicate-nested-key"],
)
def test_a_bad_config_file_is_a_config_error(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    result = gamead("config", "show", "--config", str(path), cwd=tmp_path)
    assert result.returncode == exitcodes.CONFIG
    one_red_line(result, fragment)


def test_a_config_file_that_never_ends_is_a_config_error(tmp_path: Path) -> None:
    result = gamead("config", "show", "--config", "/dev/zero", cwd=tmp_path)
    assert result.returncode == exitcodes.CONFIG
    one_red_line(result, "/dev/zero", "not a regular file")


# --- usage errors found after parsing: exit 2 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["scale", "set", "3", "--for", "banana"], "banana"),
        (["workers", "--role", "boss"], "--role"),
        (["submit", "--title", "Only a title"], "--genre"),
        (["nosuch"], "No such command"),
        (["ads", "list", "--limit", "0"], "--limit"),
        # a negative count read as an unknown option before (brief scale12 item 3): "No such option: -1"
        (["scale", "set", "-1"], "REPLICAS (the worker count) must be 0 to 10,000, not -1"),
        # attack45 F9: past the top bound, pydantic's "Input should be less than or equal to 10000" before; range46:
        # every number out of range in this one sentence, without click's "Invalid value for 'REPLICAS': "
        (["scale", "set", "1000000"], "REPLICAS (the worker count) must be 0 to 10,000, not 1,000,000"),
        # attack57: pydantic's "Input should be a valid integer, unable to parse string as an integer" before
        (["scale", "set", "abc"], "REPLICAS must be a whole number, not 'abc'"),
        (["audit", "--cursor", "abc"], "--cursor must be a whole number, not 'abc'"),
        (["ads", "list", "--limit", "2.5"], "--limit must be a whole number, 1 to 500, not '2.5'"),
        (["submit", "-t", "T", "-g", "RPG", "--duration", "1e9"],
         "--duration must be a whole number, 1 to 600, not '1e9'"),
        (["scale", "set", "--for", "5m", "-2"], "must be 0 to 10,000, not -2"),
        (["scale", "set", "--", "-1"], "must be 0 to 10,000, not -1"),
        (["scale", "set", "3", "--for", "-5"], "cannot read duration '-5'"),  # an option's value stays its own
    ],
    ids=["scale-for-banana", "workers-role", "flags-without-genre", "unknown-command", "out-of-range",
         "scale-set-negative", "scale-set-past-the-top", "scale-set-not-a-number", "cursor-not-a-number",
         "limit-not-whole", "duration-not-whole", "scale-set-negative-after-for",
         "scale-set-negative-after-dashes", "scale-for-negative"],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = gamead(*args, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE
    one_red_line(result, fragment, "--help")


def test_an_unexpected_error_is_one_line_and_the_traceback_only_with_debug(
    monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    """A bug in any command: one red line and exit 1; ``--debug`` adds the traceback."""
    from gamead_cli.commands import ads

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug in a command")

    monkeypatch.setattr(ads, "api_client", broken)
    runner = CliRunner()
    plain = runner.invoke(app, ["ads", "get", "01m87v538ce744cfgethvyb39n"])
    assert plain.exit_code == exitcodes.ERROR
    lines = _ANSI.sub("", plain.stderr).strip().splitlines()
    assert len(lines) == 1 and "RuntimeError: a bug in a command" in lines[0] and "--debug" in lines[0]
    debug = runner.invoke(app, ["--debug", "ads", "get", "01m87v538ce744cfgethvyb39n"])
    assert debug.exit_code == exitcodes.ERROR
    assert "Traceback" in debug.stderr and "a bug in a command" in debug.stderr


def test_version(tmp_path: Path) -> None:
    result = gamead("--version", cwd=tmp_path)
    assert result.returncode == 0 and re.fullmatch(r"gamead \d+\.\d+\.\d+\S*\n", result.stdout)


# --- the README's exit-code table is the code's ---------------------------------------------------------


def test_the_readme_exit_code_table_matches_the_code() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("| exit | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = [line.strip("|").split("|") for line in table.strip().splitlines()[1:]]
    assert [(int(code), meaning.strip()) for code, meaning in rows] == list(exitcodes.TABLE)


# --- item 7: client commands import only what they use --------------------------------------------------

HEAVY = ("fastapi", "uvicorn", "nats", "kubernetes", "redis", "textual", "starlette")


def imported_modules(*args: str, cwd: Path) -> set[str]:
    """Top-level packages a real ``gamead ARGS`` run imports (from ``python -X importtime``)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "gamead_cli", *args], env=clean_env(),
                            cwd=cwd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    names = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines()
             if line.startswith("import time:")}
    assert "gamead_cli" in names, result.stderr[-2000:]
    return names


def test_help_imports_no_server_stack(tmp_path: Path) -> None:
    names = imported_modules("--help", cwd=tmp_path)
    assert not names & {*HEAVY, "pydantic", "pydantic_settings", "httpx"}, sorted(names & {*HEAVY, "pydantic"})


def test_a_client_command_imports_no_server_stack(tmp_path: Path, closed_api_url: str) -> None:
    names = imported_modules("ads", "list", "--api", closed_api_url, cwd=tmp_path)
    assert "httpx" in names and not names & set(HEAVY), sorted(names & set(HEAVY))
    # nor httpx's own command line, which ``import httpx`` loads beside click and rich (load60B: ~50 ms of ~550)
    assert "pygments" not in names


# --- against a live API ---------------------------------------------------------------------------------


def test_non_ascii_output_on_an_ascii_terminal(tmp_path: Path, api_url: str) -> None:
    """``PYTHONIOENCODING=ascii gamead ads list``: characters the stream cannot show are replaced."""
    title = f"Drachenkönig — 龍 {uuid.uuid4().hex[:6]}"
    submitted = gamead("submit", "--title", title, "--genre", "RPG", "--api", api_url, cwd=tmp_path,
                       PYTHONIOENCODING="ascii")
    assert submitted.returncode == 0, submitted.stderr
    # 120 columns: the title whole (at 80, since SUBMITTED says its zone, the title column is 12 wide)
    listing = gamead("ads", "list", "--api", api_url, cwd=tmp_path, PYTHONIOENCODING="ascii", COLUMNS="120")
    assert listing.returncode == 0 and "Traceback" not in listing.stderr, listing.stderr
    assert "Drachenk?nig" in listing.stdout


def test_ctrl_c_during_submit_count_prints_the_summary(tmp_path: Path, api_url: str) -> None:
    marker = f"ctrl-c-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=api_url, timeout=10) as http:
        proc = GameadPopen(
            gamead_argv("submit", "--count", "1000", "--rate", "20", "--title", marker, "-o", "json",
                        "--api", api_url),
            # PYTHONFAULTHANDLER: should it hang, SIGABRT makes it print every thread's stack (below)
            env=clean_env(PYTHONFAULTHANDLER="1"), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, preexec_fn=sigint_reaches_it)
        try:
            wait_for(lambda: any(r["ad"]["title"] == marker for r in http.get("/ads?limit=50").json()["items"]),
                     timeout=30, what="the first ads to arrive")
            proc.send_signal(signal.SIGINT)
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)
                out, err = proc.communicate(timeout=10)
                raise AssertionError(f"no exit 30 s after Ctrl-C; its threads:\n{err[-6000:]}") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == exitcodes.INTERRUPTED, err
    summary = json.loads(out)
    assert summary["interrupted"] is True and 1 <= summary["sent"] < 1000
    # said as a stopped run says it (newcomer33 F7: notSent and stoppedBecause were missing)
    assert summary["notSent"] == 1000 - summary["sent"] and summary["stoppedBecause"] == "interrupted (Ctrl-C)"
    assert summary["accepted"] + summary["duplicates"] + sum(summary["rejectedByCode"].values()) == summary["sent"]
    assert "Traceback" not in err and f"{summary['sent']:,} of 1,000" in err  # counts with separators (attack45 F8)


@pytest.mark.parametrize("scheme", ["nats", "tls"])
def test_a_worker_still_reaching_for_nats_stops_on_sigterm(tmp_path: Path, scheme: str,
                                                          closed_port: Callable[[], int]) -> None:
    """The reviewer's find: a worker whose NATS does not answer kept retrying through SIGTERM and Ctrl-C (30 s;
    a tls:// URL, 9.5 minutes under ``timeout 10``). Nothing is held yet, so a stop ends it at once."""
    proc = GameadPopen(
        gamead_argv("worker"), env=clean_env(GAMEAD_NATS__URL=f"{scheme}://127.0.0.1:{closed_port()}",
                                             PYTHONFAULTHANDLER="1"),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_reaches_it)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # its first failed attempt: it is in the retry loop now
            if "cannot reach NATS" in line:
                break
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError("the worker did not stop on SIGTERM while connecting") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == exitcodes.OK


@pytest.mark.parametrize("verb", ["worker", "serve"])
def test_a_role_that_never_reaches_nats_exits_3_after_give_up_after(tmp_path: Path, verb: str,
                                                                    closed_port: Callable[[], int]) -> None:
    """Reviewer V8: ``gamead worker`` / ``gamead serve`` never used exit code 3 ("cannot reach"). With
    ``--give-up-after S`` (``nats.give_up_after``) they try for about S seconds, then end with one line naming
    the URL (credentials masked), the cause and the setting, and exit 3 — never a traceback."""
    port = closed_port()
    argv = gamead_argv(verb, "--give-up-after", "2", *(["--port", "0"] if verb == "serve" else []))
    proc = run_gamead(*argv[3:], env=clean_env(GAMEAD_NATS__URL=f"nats://ops:s3cret@127.0.0.1:{port}"),
                      cwd=tmp_path, timeout=120)
    assert proc.returncode == exitcodes.UNREACHABLE, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot connect to NATS at nats://ops:***@127.0.0.1:{port}: "), last
    assert "[Errno 111]" in last and "gave up after" in last and "nats.give_up_after 2.0s)" in last, last
    assert "Traceback" not in proc.stderr and "s3cret" not in proc.stderr


def test_a_worker_keeps_trying_for_nats_and_says_why(tmp_path: Path, closed_port: Callable[[], int]) -> None:
    """By default (``nats.give_up_after`` 0) a worker keeps trying — a restart would only add Kubernetes'
    back-off — and its log says why it waits: at the first failed attempt, then every 5 s, a WARNING line with
    the URL, the error, how long, the next attempt and that it tries for ever. SIGTERM ends it at once, exit 0."""
    port = closed_port()
    proc = GameadPopen(
        gamead_argv("worker"), env=clean_env(GAMEAD_NATS__URL=f"nats://127.0.0.1:{port}",
                                             GAMEAD_NATS__CONNECT_TIMEOUT="0.5"),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_reaches_it)
    seen: list[dict[str, Any]] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            record = json.loads(line)
            seen.append(record)
            if record.get("logger") == "gamead_cli.runtime":
                break
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == exitcodes.OK
    waiting = seen[-1]
    assert waiting["level"] == "WARNING" and waiting["nats_url"] == f"nats://127.0.0.1:{port}"
    message = waiting["message"]
    assert f"worker cannot reach NATS at nats://127.0.0.1:{port} for " in message and "[Errno 111]" in message
    # every duration in one form (range46: "for 502ms, … next attempt in 0.5 s" mixed two)
    assert re.search(r" for (\d+ms|\d+\.\ds|\d+s), ", message), message
    assert "next attempt in 500ms, for ever (nats.give_up_after 0)" in message and waiting["attempts"] >= 1
    assert all(r.get("logger") != "gamead_core.queue.connection" for r in seen)  # one voice, not one per attempt


def test_a_client_command_whose_api_cannot_reach_nats_exits_3(tmp_path: Path, api_without_nats: str) -> None:
    """The README's exit 3 is "the API (or NATS) could not be reached": an API answering 503 ``queue_unavailable``
    (NATS away, here never started) makes `gamead ads list` / `ads get` exit 3 with one line, as a script that
    tells "down, try later" from "the request failed" (1) expects (reviewer V10: they exited 1 while nats-server
    was SIGSTOPped)."""
    for args in (["ads", "list"], ["ads", "get", "01m8qx6zxxe4pjjehad9yjvjjw"]):
        proc = run_gamead(*args, "--api", api_without_nats, env=clean_env(GAMEAD_CLIENT__RETRY_FOR="0"), cwd=tmp_path,
                          timeout=60)
        assert proc.returncode == exitcodes.UNREACHABLE, (args, proc.returncode, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "queue_unavailable" in lines[0], lines


@pytest.mark.parametrize("verb", [["dlq", "list"], ["audit"]])
def test_a_cursor_past_the_int64_maximum_is_refused_and_the_bound_said_is_that_maximum(
        tmp_path: Path, closed_api_url: str, verb: list[str]) -> None:
    """An attack drill (session 23): the bound said was 2**63, one past the largest int64, and 2**63 was taken."""
    refused = gamead(*verb, "--cursor", str(2**63), "--api", closed_api_url, cwd=tmp_path)
    assert refused.returncode == exitcodes.USAGE
    one_red_line(refused, f"--cursor must be 0 to {2**63 - 1:,}, not {2**63:,}")  # range46: the one sentence
    taken = gamead(*verb, "--cursor", str(2**63 - 1), "--api", closed_api_url, cwd=tmp_path)
    assert taken.returncode == exitcodes.UNREACHABLE, taken.stderr  # past the options: it went for the API


@pytest.mark.parametrize("key", ["order-1 ", " order-1"])
def test_an_idempotency_key_with_a_space_at_an_end_is_refused_before_sending(tmp_path: Path, closed_api_url: str,
                                                                             key: str) -> None:
    """The API reads ``Idempotency-Key: order-1 `` as ``order-1`` (RFC 9110 §5.5): the CLI refuses such a key
    rather than let the user believe the space counts (session 23)."""
    refused = gamead("submit", "--title", "Spaced", "--genre", "RPG", "--idempotency-key", key, "--api",
                     closed_api_url, cwd=tmp_path)
    assert refused.returncode == exitcodes.USAGE
    one_red_line(refused, "begin or end with a space")


@pytest.mark.parametrize("padded", [" {url}", "{url} ", "\u00a0{url}\u00a0"], ids=["leading", "trailing", "nbsp"])
@pytest.mark.parametrize("given", ["--api", "GAMEAD_API_URL", "GAMEAD_CLIENT__API_URL", "config file"])
def test_an_api_url_pasted_with_spaces_around_it_reaches_the_api(tmp_path: Path, api_without_nats: str, given: str,
                                                                 padded: str) -> None:
    """`--api ' http://…'` (a URL pasted with the space before it) passed the URL's check, which read it stripped,
    then every request failed: exit 1, `invalid API URL ' http://…': Request URL is missing an 'http://' or 'https://'
    protocol`, though the same URL with a space after it worked. Every way of giving it now takes the URL without
    the spaces around it: the command reaches the API (here one without NATS: exit 3 queue_unavailable), as
    unpadded."""
    url = padded.format(url=api_without_nats)
    args: list[str] = ["ads", "list"]
    env = clean_env(GAMEAD_CLIENT__RETRY_FOR="0")
    if given == "--api":
        args += ["--api", url]
    elif given == "config file":
        (tmp_path / "config.yaml").write_text(f"client:\n  api_url: {json.dumps(url)}\n", encoding="utf-8")
    else:
        env[given] = url
    proc = run_gamead(*args, env=env, cwd=tmp_path, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == exitcodes.UNREACHABLE, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and "queue_unavailable" in lines[0], lines


# leftout58 (attack57b): a refused value said Click's "Invalid value for 'ID': …" / "Invalid value for '--status' /
# '-s': …" where a number past its bound says "--limit must be 1 to 500, not 0": each now names its parameter alone
PLAIN = [
    (["workers", "quiet", "bad id!"], "error: ID: 'bad id!' is not a worker id (a worker id is 1-128"),
    (["workers", "resume", "w-1", "--all"], "error: ID: name worker IDs or --all, not both"),
    (["worker", "--id", "a b"], "error: --id: 'a b' is not a worker id"),
    (["ads", "get", "x y"], "error: ID: 'x y' is not an ad id"),
    (["ads", "list", "--status", "foo"], "error: --status must be one of queued, processing"),  # newcomer58's words
    (["ads", "list", "-o", "yaml"], "error: --output must be table or json, not 'yaml'"),
    (["submit", "--count", "3", "-q"], "error: --quiet: prints the id of one ad"),
]


@pytest.mark.parametrize(("args", "start"), PLAIN, ids=[" ".join(a) for a, _ in PLAIN])
def test_a_refused_value_names_its_parameter_without_click_s_invalid_value_for(
        tmp_path: Path, closed_api_url: str, args: list[str], start: str) -> None:
    """3 of 3 ids (``quiet``/``resume`` ID, ``worker --id``) and every other refused value began with Click's
    ``Invalid value for`` before; now 0."""
    result = gamead(*args, *(("--api", closed_api_url) if args[0] != "worker" else ()), cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr
    line = one_red_line(result)
    assert line.startswith(start) and "Invalid value" not in line, line
