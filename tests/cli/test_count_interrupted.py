"""attack46 F5: `gamead dlq replay --all --yes` Ctrl-C'd while it counted the entries (its dry run: 1-3 s over
5,000 entries) said only ``error: interrupted``: had a job started? None had. Now the line says so. A server on
loopback (:mod:`tests.hostile_http`, ``head_trickle``) holds the count's answer; the CLI, SIGINTed (or SIGTERMed)
once the count is out, ends 130 (143) with one red line."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.hostile_http import HostileServer
from tests.support import Proc, clean_env, gamead_argv


@pytest.mark.parametrize(("verb", "done", "sig", "code", "said"), [
    ("replay", "replayed", signal.SIGINT, 130, "Ctrl-C"),
    ("purge", "purged", signal.SIGTERM, 143, "SIGTERM"),
], ids=["replay-ctrl-c", "purge-sigterm"])
def test_a_stop_during_the_count_says_no_job_was_started(tmp_path: Path, verb: str, done: str, sig: int, code: int,
                                                         said: str) -> None:
    server = HostileServer("head_trickle").start()
    proc = Proc("cli", gamead_argv("dlq", verb, "--all", "--yes", "--api", server.url), clean_env(COLUMNS="300"),
                tmp_path / "cli.log", cwd=tmp_path).start()
    try:
        deadline = time.monotonic() + 60
        while not any(f"/v1/dlq/{verb}" in head for head in server.heads):  # the count is out
            assert proc.alive() and time.monotonic() < deadline, proc.output()
            time.sleep(0.02)
        proc.signal(sig)
        assert proc.popen is not None and proc.popen.wait(timeout=30) == code, proc.output()
    finally:
        proc.kill()
        server.stop()
    lines = proc.output().strip().splitlines()
    assert lines[-1] == f"error: interrupted ({said}) while counting the entries, before any job: nothing was {done}", \
        proc.output()
    assert "Traceback" not in proc.output()
