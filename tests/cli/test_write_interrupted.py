"""regress40 F1: a write verb Ctrl-C'd while its request is out says the write may have been carried out; F5: a
job followed and stopped by SIGTERM / SIGHUP exits 143 / 129 and says which, not 130.

Figure, before: `gamead dlq replay --all --yes` interrupted while its job-creating POST was out said only
``error: interrupted`` (exit 130), while the job had been created and replayed 40 of 40 entries; the same for a DLQ
purge, a repair, a job cancel and a scale override set or cleared. Here a server on loopback
(:mod:`tests.hostile_http`, ``hold_writes``) answers the dry run and holds the write: the CLI, SIGINTed once the write
is held, ends 130 with one red line saying the write may have been carried out and which command shows it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
import time
from pathlib import Path

import pytest

from tests.hostile_http import HostileServer
from tests.support import Proc, clean_env, gamead_argv

JOB = "01kbzzzzzzzzzzzzzzzzzzzzzz"

VERBS = [(("dlq", "replay", "--all", "--yes"), "POST /v1/dlq/replay", "dlq jobs"),
         (("dlq", "purge", "--all", "--yes"), "POST /v1/dlq/purge", "dlq jobs"),
         (("dlq", "cancel", JOB), f"POST /v1/jobs/{JOB}/cancel", f"dlq jobs {JOB}"),
         (("scale", "set", "3", "--for", "5m"), "POST /v1/scale/override", "scale status"),
         (("scale", "clear"), "DELETE /v1/scale/override", "scale status"),
         (("submit", "--title", "t", "--genre", "rpg"), "POST /ads", "ads list"),
         # probe49 F8: it said "POST /v1/workers/ID/quiet", naming no worker
         (("workers", "quiet", "local-1"), "POST /v1/workers/local-1/quiet", "workers"),
         (("workers", "resume", "local-2"), "POST /v1/workers/local-2/resume", "workers")]


@pytest.mark.parametrize(("verb", "write", "check"), VERBS, ids=[" ".join(v[0]) for v in VERBS])
def test_a_write_interrupted_while_out_says_it_may_have_been_carried_out(
        tmp_path: Path, verb: tuple[str, ...], write: str, check: str) -> None:
    server = HostileServer("hold_writes").start()
    proc = Proc("cli", gamead_argv(*verb, "--api", server.url), clean_env(COLUMNS="300"), tmp_path / "cli.log",
                cwd=tmp_path).start()
    try:
        deadline = time.monotonic() + 60
        while server.held == 0:
            assert proc.alive() and time.monotonic() < deadline, proc.output()
            time.sleep(0.02)
        proc.signal(signal.SIGINT)
        assert proc.popen is not None and proc.popen.wait(timeout=30) == 130, proc.output()
    finally:
        proc.kill()
        server.stop()
    last = proc.output().strip().splitlines()[-1]
    assert last.startswith(f"error: interrupted (Ctrl-C) while {write} was out: it may have been carried out"), last
    assert f"{check} --api {server.url}" in last, last
    assert "Traceback" not in proc.output()


@pytest.mark.parametrize(("sig", "code", "said"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM"),
                                                   (signal.SIGHUP, 129, "SIGHUP")])
def test_a_followed_job_stopped_by_a_signal_exits_by_that_signal(tmp_path: Path, sig: int, code: int,
                                                                 said: str) -> None:
    """regress40 F5: `gamead dlq replay` following its job exited 130 for SIGTERM and SIGHUP too (README: handled
    as Ctrl-C, exit 143 / 129): a CI job's cancel read "interrupted by Ctrl-C"."""
    server = HostileServer("running_job")
    output = signalled_when(tmp_path, server, lambda: server.followed > 0, sig, code, "dlq", "replay", "--all", "--yes")
    assert f"interrupted ({said}): job {JOB} continues on the server: " in output, output
    # words56b F2: one form for every interrupted line (README's exit codes): the red `error: interrupted (…)`
    assert f"error: interrupted ({said}): job {JOB} continues on the server: " in output, output
    assert "Traceback" not in output


def signalled_when(tmp_path: Path, server: HostileServer, ready: Callable[[], bool], sig: int, code: int,
                   *args: str) -> str:
    """Run ``gamead *args --api`` ``server`` (started here, stopped at the end), send it ``sig`` once ``ready()``
    (within 60 s), check it exits ``code`` (within 30 s); its output."""
    server.start()
    proc = Proc("cli", gamead_argv(*args, "--api", server.url), clean_env(COLUMNS="300"), tmp_path / "cli.log",
                cwd=tmp_path).start()
    try:
        deadline = time.monotonic() + 60
        while not ready():
            assert proc.alive() and time.monotonic() < deadline, proc.output()
            time.sleep(0.02)
        proc.signal(sig)
        assert proc.popen is not None and proc.popen.wait(timeout=30) == code, proc.output()
    finally:
        proc.kill()
        server.stop()
    return proc.output()
