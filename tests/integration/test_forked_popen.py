"""``tests.forked_popen.GameadPopen``: a ``gamead`` command a test drives through pipes is forked by the fork
server (no interpreter start and imports of its own), and is still a real process with real pipes, exit codes and
signals (suite38; the Ctrl-C tests of tests/cli/test_submit_stream.py and test_cli_errors.py run through it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.forked_popen import GameadPopen, gamead_run
from tests.support import Proc, clean_env, gamead_argv, sigint_reaches_it, wait_for


def _forked(pid: int) -> bool:
    """True if ``pid`` is a fork of the fork server (its command line is the server's), not ``python -m …``."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1].endswith(b"forkserver.py")


def test_a_piped_command_is_forked_and_reads_its_stdin_and_writes_its_stdout(tmp_path: Path) -> None:
    """Figure: before, ``subprocess.Popen(gamead_argv("submit", "--ndjson", "-", …), stdin=PIPE, …)`` in a test
    was ``python -m gamead_cli`` started afresh (its command line), ~0.4-1 s of CPU of imports per command."""
    env = clean_env(GAMEAD_CLIENT__RETRY_FOR="0")
    argv = gamead_argv("submit", "--ndjson", "-", "--api", "http://127.0.0.1:9", "-o", "json")
    with GameadPopen(argv, env=env, cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True, preexec_fn=sigint_reaches_it) as cli:
        assert _forked(cli.pid)
        out, err = cli.communicate("", timeout=60)  # no ad: it ends once its stdin ends, refused (left45b F12)
    assert cli.returncode == 2 and "stdin: holds no ad" in err, err
    assert json.loads(out)["error"]["code"] == "bad_usage", out


def test_run_gives_what_subprocess_run_gives(tmp_path: Path) -> None:
    """``gamead_run`` = ``subprocess.run``: exit code, stdout to a file of the test's, stderr captured."""
    target = tmp_path / "out.txt"
    with open(target, "w") as out:
        done = gamead_run(gamead_argv("--version"), env=clean_env(), cwd=tmp_path, stdout=out,
                          stderr=subprocess.PIPE, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert target.read_text().startswith("gamead ")
    usage = gamead_run(gamead_argv("no-such-verb"), env=clean_env(), cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert usage.returncode == 2 and "no-such-verb" in usage.stderr, usage


def test_a_descriptor_closed_as_by_a_shell_is_closed_in_the_forked_child_as_in_a_fresh_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``closed=(1,)``: stdout closed as ``sh -c 'exec "$@" >&-'`` leaves it (suite46: tests/cli/
    test_submit_says_what_it_did_a30c.py ran its twelve commands through ``sh``, each a fresh interpreter). The
    forked child has no descriptor 1 and says what a fresh interpreter (``GAMEAD_TEST_FORKSERVER=0``) says."""
    argv = gamead_argv("submit", "--ndjson", "-", "--api", "http://127.0.0.1:9", "-o", "json")
    seen = []
    for forked in (True, False):
        monkeypatch.setenv("GAMEAD_TEST_FORKSERVER", "1" if forked else "0")
        with GameadPopen(argv, env=clean_env(GAMEAD_CLIENT__RETRY_FOR="0"), cwd=tmp_path, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, closed=(1,)) as cli:
            assert _forked(cli.pid) == forked
            wait_for(lambda: not Path(f"/proc/{cli.pid}/fd/1").exists(), timeout=30, what="its stdout closed")
            out, err = cli.communicate("", timeout=60)
        seen.append((cli.returncode, out, err))
    assert seen[0] == seen[1] and seen[0][0] == 2 and "stdin: holds no ad" in seen[0][2], seen


def test_a_prlimit_nofile_start_is_forked_with_its_limits(tmp_path: Path, closed_port: Callable[[], int]) -> None:
    """``Proc(["prlimit", "--nofile=S:H", *gamead_argv(…)])`` (the open-files bound's tests: 11 API starts a run)
    is forked, its ``RLIMIT_NOFILE`` set in the child as prlimit sets it; before, a fresh interpreter (~0.6 CPU-s
    of imports each: test_connection_bound alone 8.7 -> 2.7 CPU-s). Without the fork server's part: ``prlimit``'s
    ``python -m gamead_cli``, not a fork."""
    if os.environ.get("GAMEAD_TEST_FORKSERVER") == "0" or shutil.which("prlimit") is None:
        pytest.skip("every start a fresh interpreter, or no prlimit")
    argv = ["prlimit", "--nofile=100:100", *gamead_argv("serve", "--port", "0")]
    api = Proc("api", argv, clean_env(GAMEAD_NATS__URL=f"nats://127.0.0.1:{closed_port()}"), tmp_path / "api.log")
    try:
        api.start()
        assert _forked(api.pid)
        limited = re.compile(r"Max open files\s+100\s+100\s")  # set by the child itself, just after its fork
        wait_for(lambda: limited.search(Path(f"/proc/{api.pid}/limits").read_text()), timeout=30, what="its limit")
        wait_for(lambda: "open-files limit 100" in api.output(), timeout=60, what="serve saying its limit")
    finally:
        api.stop(timeout=10)

