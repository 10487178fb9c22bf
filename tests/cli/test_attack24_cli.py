"""attack24 items 5, 6, 7, 8 and 10: what an operator sees when a flag's path cannot be written, a filter the API
would refuse, output that cannot be written, a registry that cannot be read, and two wordings.

Each test asserts the red line, the exit code (README "Exit codes") or what stdout shows."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gamead_cli import exitcodes
from gamead_core.embedded import EmbeddedNats
from tests.forked_popen import GameadPopen, gamead_run
from tests.integration.dlq_lane import Lane, made_up_entry, shared_lane  # noqa: F401 - shared_lane is a fixture
from tests.support import Proc, clean_env, gamead_argv, run_gamead, start_api, start_worker, wait_for

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def gamead(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_gamead(*args, env=clean_env(**env), cwd=cwd, timeout=60, errors="replace")


def red_line(result: subprocess.CompletedProcess[str]) -> str:
    """stderr's one ``error: …`` line (and nothing else: no traceback, no "Exception ignored")."""
    lines = _ANSI.sub("", result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# --- item 5: a --data-dir that cannot work is exit 5 and a sentence, never "unexpected …" ------------------------


def _up(data_dir: Path, cwd: Path, port: int) -> subprocess.CompletedProcess[str]:
    """``gamead up`` on ``data_dir``, refused before its API's ``port`` matters: a port held for the test
    (``closed_port``), so that no other process's listener there could change what it says."""
    return gamead("up", "--workers", "0", "--port", str(port), "--data-dir", str(data_dir), cwd=cwd)


def test_a_data_dir_that_is_a_file_is_exit_5_naming_the_flag(tmp_path: Path, closed_port: Callable[[], int]) -> None:
    (tmp_path / "a-file").write_text("x")
    result = _up(tmp_path / "a-file", tmp_path, closed_port())
    assert result.returncode == exitcodes.CONFIG, result.stderr
    line = red_line(result)
    assert "--data-dir" in line and "is a file, not a directory" in line and "unexpected" not in line, line


def test_a_data_dir_under_a_file_is_exit_5_naming_the_flag(tmp_path: Path, closed_port: Callable[[], int]) -> None:
    (tmp_path / "a-file").write_text("x")
    result = _up(tmp_path / "a-file" / "sub", tmp_path, closed_port())
    assert result.returncode == exitcodes.CONFIG, result.stderr
    line = red_line(result)
    assert "--data-dir" in line and "a part of its path is a file" in line and "unexpected" not in line, line


def test_a_data_dir_whose_logs_is_a_file_is_exit_5_naming_the_flag(tmp_path: Path,
                                                                    closed_port: Callable[[], int]) -> None:
    """The directories up creates in its data dir (logs/) are the flag's too. Was: "unexpected
    NotADirectoryError" once nats-server had started."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "logs").write_text("x")
    result = _up(tmp_path / "d", tmp_path, closed_port())
    assert result.returncode == exitcodes.CONFIG, result.stderr
    line = red_line(result)
    assert "--data-dir" in line and "its logs/ is a file, not a directory" in line, line


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody can write in: ``chattr +i`` as root (root ignores permission bits), else mode 0o500."""
    path = tmp_path / "locked"
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o500)
        yield path
        path.chmod(0o700)
        return
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"chattr +i is not possible here: {made.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)


@pytest.mark.parametrize("sub", ["", "sub"])
def test_a_data_dir_that_cannot_be_written_is_exit_5_naming_the_flag(tmp_path: Path, unwritable_dir: Path, sub: str,
                                                                     closed_port: Callable[[], int]) -> None:
    result = _up(unwritable_dir / sub if sub else unwritable_dir, tmp_path, closed_port())
    assert result.returncode == exitcodes.CONFIG, result.stderr
    line = red_line(result)
    assert "--data-dir" in line and "cannot be written" in line and "unexpected" not in line, line


# --- item 6: a filter the API would refuse is exit 2 before any request, naming the flag and its bound ---------


@pytest.mark.parametrize("args", [["list", "-o", "json"], ["export"], ["replay", "--yes", "-o", "json"],
                                  ["purge", "--yes", "-o", "json"]], ids=["list", "export", "replay", "purge"])
@pytest.mark.parametrize(("flag", "value", "bound"), [
    ("--error-class", "A" * 201, "at most 200 characters"),
    ("--error-class", "A" * 70_000, "at most 200 characters"),
    ("--error-class", "Perm\x1banentError", "control characters (found U+001B)"),
    ("--message", "a\x01b", "control characters (found U+0001)"),
], ids=["class-201", "class-70000", "class-escape", "message-control"])
def test_a_filter_the_api_would_refuse_is_bad_usage_before_any_request(
        tmp_path: Path, closed_api_url: str, args: list[str], flag: str, value: str, bound: str) -> None:
    """The API's port is closed: a request sent would end "cannot reach" (exit 3). Was: exit 1 from the API's 422
    or 414, or "invalid API URL …: URL component 'query' too long" blaming a correct URL."""
    result = gamead("dlq", *args, flag, value, "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr[:300]
    line = red_line(result)
    assert flag in line and bound in line and "API URL" not in line, line[:300]
    if "json" in args:
        doc = json.loads(result.stdout)
        assert doc["error"]["code"] == "bad_usage" and doc["error"]["exitCode"] == exitcodes.USAGE, doc


def test_an_actor_the_api_would_refuse_names_the_bound(tmp_path: Path, closed_api_url: str) -> None:
    """``audit --actor`` by the API's own ACTOR_PATTERN (gamead_core.audit.model), its bound said."""
    result = gamead("audit", "--actor", "a" * 65, "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr
    line = red_line(result)
    assert "--actor" in line and "at most 64 characters" in line, line


def test_an_error_class_at_the_bound_goes_to_the_api(tmp_path: Path, closed_api_url: str) -> None:
    result = gamead("dlq", "list", "--error-class", "A" * 200, "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.UNREACHABLE, result.stderr  # it was sent (to a closed port)


def test_a_query_too_long_for_a_url_never_blames_the_api_url(closed_api_url: str) -> None:
    """The client's last guard, whatever flag made the query: bad usage, nothing sent, the URL not blamed."""
    from gamead_cli.client import ApiClient

    with ApiClient(closed_api_url, retry_for=0) as client, pytest.raises(Exception) as caught:  # noqa: PT011
        client.request("GET", "/v1/dlq", params={"errorClass": "A" * 70_000})
    assert getattr(caught.value, "exit_code", None) == exitcodes.USAGE, repr(caught.value)  # Click's usage error
    message = caught.value.format_message()  # type: ignore[attr-defined]
    assert "invalid API URL" not in message and "nothing was sent" in message, message


# --- item 7: output that cannot be written is one red line and exit 1 -----------------------------------------


@pytest.fixture
def dev_full(tmp_path: Path) -> Path:
    """``/dev/full`` (every write: ENOSPC), or one made with mknod where the container has none."""
    real = Path("/dev/full")
    if real.exists() and stat.S_ISCHR(real.stat().st_mode):
        return real
    made = tmp_path / "full"
    try:
        os.mknod(made, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except OSError as exc:
        pytest.skip(f"no /dev/full and mknod is refused: {exc}")
    return made


def _to(target: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``gamead ARGS > target``: stdout is the file itself, as a shell redirection makes it."""
    with open(target, "w") as out:
        return gamead_run(gamead_argv(*args), stdout=out, stderr=subprocess.PIPE, text=True, cwd=cwd,
                          env=clean_env(), stdin=subprocess.DEVNULL, timeout=60, check=False)


@pytest.mark.parametrize("args", [["config", "path", "-o", "json"], ["config", "show"]])
def test_stdout_that_cannot_be_written_is_one_red_line_and_exit_1(tmp_path: Path, dev_full: Path,
                                                                  args: list[str]) -> None:
    """Was: exit 0 with nothing written (or "unexpected OSError"), and under -o json a traceback."""
    result = _to(dev_full, *args, cwd=tmp_path)
    assert result.returncode == exitcodes.ERROR, result.stderr
    line = red_line(result)
    assert "cannot write the output to stdout" in line and "No space left on device" in line, line


def test_a_closed_pipe_stays_quiet(tmp_path: Path) -> None:
    """``gamead … | head -c1``: the reader went away; no red line and no "Exception ignored", as Unix tools."""
    proc = GameadPopen(gamead_argv("config", "show"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       cwd=tmp_path, env=clean_env(GAMEAD_CLIENT__TIMEOUT="7"), stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the command writes: its first write finds the pipe closed
    err = proc.stderr.read().decode(errors="replace")
    proc.wait(60)
    assert "error" not in err.lower() and "Traceback" not in err and "Exception ignored" not in err, err


@pytest.fixture(scope="module")
def lane_with_an_entry(shared_lane: Lane) -> str:  # noqa: F811 - the fixture above
    job = shared_lane.run_job("/v1/dlq/import", {"entries": [made_up_entry("Export Drill Entry")]})
    assert job["state"] == "succeeded", job
    return shared_lane.url


def test_dlq_export_to_a_device_that_is_full_is_exit_1_and_the_device_stays(tmp_path: Path, dev_full: Path,
                                                                            lane_with_an_entry: str) -> None:
    """Was: "exported 8 entries to /dev/full", exit 0, and /dev/full replaced by a regular file (the temporary
    file renamed over the device)."""
    result = gamead("dlq", "export", str(dev_full), "--api", lane_with_an_entry, cwd=tmp_path)
    assert result.returncode == exitcodes.ERROR, result.stderr
    line = red_line(result)
    assert f"cannot write {dev_full}" in line and "No space left on device" in line, line
    assert "exported 1 entr" not in result.stderr, result.stderr
    assert stat.S_ISCHR(dev_full.stat().st_mode)  # still the device


def test_dlq_export_to_a_link_replaces_its_target_never_the_link(tmp_path: Path, lane_with_an_entry: str) -> None:
    """Was: the temporary file renamed over the link itself (``/dev/stdout`` redirected to a file: the link gone)."""
    (tmp_path / "real.jsonl").write_text("old\n")
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "real.jsonl")
    result = gamead("dlq", "export", "link.jsonl", "--api", lane_with_an_entry, cwd=tmp_path)
    assert result.returncode == exitcodes.OK, result.stderr
    assert (tmp_path / "link.jsonl").is_symlink()
    assert "Export Drill Entry" in (tmp_path / "real.jsonl").read_text()


@pytest.mark.parametrize("args", [["dlq", "export"], ["ads", "list", "-o", "json"]])
def test_a_live_verb_whose_stdout_is_full_is_exit_1(tmp_path: Path, dev_full: Path, lane_with_an_entry: str,
                                                    args: list[str]) -> None:
    result = _to(dev_full, *args, "--api", lane_with_an_entry, cwd=tmp_path)
    assert result.returncode == exitcodes.ERROR, result.stderr
    assert "cannot write the output to stdout" in red_line(result)


# --- item 8: a heartbeat older than the ttl is not shown idle/ok; "registry:" said once -----------------------


TTL = 2.0


@pytest.fixture
def frozen_registry(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> Iterator[str]:
    """An API and a worker on a nats-server of this test, which is then SIGSTOPped (by its PID; SIGCONT after):
    the registry cannot be read, the last entries age."""
    server = fresh_nats()
    env = {"GAMEAD_REGISTRY__TTL": str(TTL), "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5"}
    api, url = start_api(server.url, tmp_path, **env)
    procs.append(api)
    procs.append(start_worker(server.url, tmp_path, worker_id="frozen-w", ready=True, **env))

    def listed() -> bool:
        body = json.loads(gamead("workers", "-o", "json", "--api", url, cwd=tmp_path).stdout or "{}")
        return any(n.get("id") == "frozen-w" for n in body.get("items") or [])

    wait_for(listed, timeout=30, what="the worker in gamead workers")
    assert server.proc is not None
    pid = server.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield url
    finally:
        os.kill(pid, signal.SIGCONT)


def test_workers_past_the_ttl_are_stuck_in_every_view_and_registry_is_said_once(tmp_path: Path,
                                                                                 frozen_registry: str) -> None:
    url = frozen_registry

    def stale() -> dict | None:
        body = json.loads(gamead("workers", "-o", "json", "--api", url, cwd=tmp_path,
                                 GAMEAD_CLIENT__TIMEOUT="5").stdout or "{}")
        nodes = body.get("items") or []
        old = [n for n in nodes if (n.get("heartbeatAgeSeconds") or 0) > TTL + 1]
        return body if body.get("error") and old and len(old) == len(nodes) else None

    body = wait_for(stale, timeout=60, what="a registry error and every heartbeat older than the ttl")
    assert {n["state"] for n in body["items"]} == {"stuck"}, body["items"]
    table = gamead("workers", "--api", url, cwd=tmp_path, COLUMNS="160")
    text = _ANSI.sub("", table.stdout)
    assert " idle " not in text and " ok " not in text and "stuck" in text, text
    assert "registry: registry" not in text and "registry" in text, text
    # its 503s (the frozen NATS) not sent again for client.retry_for (10 s): they said nothing the states here
    # depend on, and took 22 of this test's 29 s (suite44: top --once 24.3 s → 2.2 s, the same states)
    once = json.loads(gamead("top", "--once", "-o", "json", "--api", url, cwd=tmp_path,
                             GAMEAD_CLIENT__RETRY_FOR="0").stdout)
    assert {n["state"] for n in once["workers"] if n["heartbeatAgeSeconds"] > TTL + 1} == {"stuck"}, once


# --- item 10: two wordings -----------------------------------------------------------------------------------


def test_an_api_row_shows_dashes_for_what_an_api_never_does() -> None:
    from gamead_cli.tui.view_tables import NODE_COLUMNS, node_row

    row = dict(zip(NODE_COLUMNS, (str(cell) for cell in node_row(
        {"id": "api-1", "role": "api", "state": "ok", "processed": 0, "failed": 0, "heartbeatAgeSeconds": 1.0}))))
    assert (row["IN-FL"], row["COMPLETED"], row["FAILED"]) == ("-", "-", "-"), row
    worker = dict(zip(NODE_COLUMNS, (str(cell) for cell in node_row(
        {"id": "w", "role": "worker", "state": "idle", "processed": 0, "failed": 0, "inFlight": 0, "concurrency": 4}))))
    assert (worker["COMPLETED"], worker["FAILED"]) == ("0", "0"), worker


def test_a_directory_given_as_a_file_is_not_said_to_read_for_ever(tmp_path: Path, closed_api_url: str) -> None:
    result = gamead("dlq", "import", str(tmp_path), "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr
    line = red_line(result)
    assert "a directory" in line and "never end" not in line, line


@pytest.fixture
def fifo_read_once(tmp_path: Path) -> Iterator[Path]:
    """A FIFO whose reader opens it (as soon as a writer does) and closes it at once, reading nothing: every
    write then finds no reader (``EPIPE``), as a ``FILE`` given to a pipeline that already ended."""
    import threading

    path = tmp_path / "pipe.jsonl"
    os.mkfifo(path)

    def read_and_leave() -> None:
        os.close(os.open(path, os.O_RDONLY))  # blocks until the command opens FILE for writing

    reader = threading.Thread(target=read_and_leave, daemon=True)
    reader.start()
    # the reader asleep in its open, waiting for a writer (the kernel's wait_for_partner), before the command opens
    # FILE: a reader thread not yet there on a loaded machine made the command say "waiting up to 5 s for a process
    # to read the FIFO" first, a second line (a full run's failure)
    wchan = Path(f"/proc/self/task/{reader.native_id}/wchan")
    wait_for(lambda: wchan.read_text().strip() == "wait_for_partner", timeout=10, interval=0.005,
             what="the FIFO's reader to wait in its open")
    yield path
    if reader.is_alive():  # the command never opened it: let the reader's open return
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    reader.join(10)


@pytest.mark.parametrize("verb", [["dlq", "export"], ["top", "--once", "--record"]])
def test_a_file_argument_whose_pipe_reader_left_is_one_red_line_and_exit_1(
        tmp_path: Path, fifo_read_once: Path, lane_with_an_entry: str, verb: list[str]) -> None:
    """Was: quiet (the closed pipe taken for stdout's: ``| head``), so a pipeline lost the export without a word.
    A closed pipe is quiet only on stdout; a FILE the command was told to write that cannot take it is said."""
    result = gamead(*verb, str(fifo_read_once), "--api", lane_with_an_entry, cwd=tmp_path)
    assert result.returncode == exitcodes.ERROR, result.stderr
    line = red_line(result)
    assert str(fifo_read_once) in line and "Broken pipe" in line and "unexpected" not in line, line


def test_top_recording_to_a_full_device_is_one_red_line_naming_it(tmp_path: Path, dev_full: Path,
                                                                  lane_with_an_entry: str) -> None:
    result = gamead("top", "--once", "--record", str(dev_full), "--api", lane_with_an_entry, cwd=tmp_path)
    assert result.returncode == exitcodes.ERROR, result.stderr
    line = red_line(result)
    assert str(dev_full) in line and "No space left on device" in line and "unexpected" not in line, line
    assert stat.S_ISCHR(dev_full.stat().st_mode)


def test_a_pipe_file_whose_reader_left_is_said_even_when_a_verb_lets_the_failure_through(
        tmp_path: Path, fifo_read_once: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The error boundary took every ``BrokenPipeError`` for stdout's (``| head``: quiet, exit 1): a FILE whose
    pipe reader left was lost without a word wherever a verb did not turn the error into a sentence itself (the
    dashboard's recording). Now a write to FILE that fails is :class:`OutputFailed` naming FILE wherever it
    happens (:class:`gamead_cli.atomic.PendingFile`): the boundary says it in one red line, exit 1."""
    import click

    from gamead_cli.atomic import PendingFile
    from gamead_cli.root import _GuardedGroup

    @click.command("write")
    @click.argument("file")
    def write(file: str) -> None:  # what a verb does with FILE, no error handling of its own
        pending = PendingFile(file)
        pending.file.write("x" * 100_000)
        pending.commit()

    group = _GuardedGroup(name="gamead", commands={"write": write})
    with pytest.raises(SystemExit) as ended:
        group.main(["write", str(fifo_read_once)], prog_name="gamead")
    assert ended.value.code == exitcodes.ERROR
    err = _ANSI.sub("", capsys.readouterr().err).strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert f"cannot write {fifo_read_once}" in err[0] and "Broken pipe" in err[0], err


def test_an_export_to_a_pipe_whose_reader_left_after_reading_some_says_it_was_cut_short(
        tmp_path: Path, shared_lane: Lane) -> None:  # noqa: F811 - the fixture imported above
    """attack27b F9: ``gamead dlq export /dev/stdout | head -c 100`` said "nothing was exported" though its reader
    had read the first entries: a device or a FIFO passes lines on as they are written (only a regular FILE is
    left as it was). Last in this module: it adds 300 entries to the shared lane."""
    import threading

    for part in range(4):  # ~250 KB of JSON Lines, past what a pipe holds (64 KiB), in bodies under the API's bound
        entries = [made_up_entry(f"Cut Short {part}-{n}") for n in range(75)]
        job = shared_lane.run_job("/v1/dlq/import", {"entries": entries})
        assert job["state"] == "succeeded", job
    path = tmp_path / "head.jsonl"
    os.mkfifo(path)
    got: list[bytes] = []

    def read_some_and_leave() -> None:  # `head -c 100`
        fd = os.open(path, os.O_RDONLY)
        try:
            got.append(os.read(fd, 100))
        finally:
            os.close(fd)

    reader = threading.Thread(target=read_some_and_leave, daemon=True)
    reader.start()
    result = gamead("dlq", "export", str(path), "--api", shared_lane.url, cwd=tmp_path)
    reader.join(10)
    assert got and got[0].startswith(b"{"), got  # the reader did get the first bytes
    assert result.returncode == exitcodes.ERROR, result.stderr
    line = red_line(result)
    assert f"cannot write {path}" in line and "Broken pipe" in line, line
    assert "nothing was exported" not in line and "the export was cut short" in line, line
