"""attack46 F5: `gamead dlq replay --all --yes` Ctrl-C'd while it counted the entries (its dry run: 1-3 s over
5,000 entries) said only ``error: interrupted``: had a job started? None had. Now the line says so. A server on
loopback (:mod:`tests.hostile_http`, ``head_trickle``) holds the count's answer; the CLI, SIGINTed (or SIGTERMed)
once the count is out, ends 130 (143) with one red line."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.cli.test_write_interrupted import signalled_when
from tests.hostile_http import HostileServer


@pytest.mark.parametrize(("verb", "done", "sig", "code", "said"), [
    ("replay", "replayed", signal.SIGINT, 130, "Ctrl-C"),
    ("purge", "purged", signal.SIGTERM, 143, "SIGTERM"),
], ids=["replay-ctrl-c", "purge-sigterm"])
def test_a_stop_during_the_count_says_no_job_was_started(tmp_path: Path, verb: str, done: str, sig: int, code: int,
                                                         said: str) -> None:
    server = HostileServer("head_trickle")
    output = signalled_when(tmp_path, server, lambda: any(f"/v1/dlq/{verb}" in head for head in server.heads), sig,
                            code, "dlq", verb, "--all", "--yes")  # signalled once the count is out
    lines = output.strip().splitlines()
    assert lines[-1] == f"error: interrupted ({said}) while counting the entries, before any job: nothing was {done}", \
        output
    assert "Traceback" not in output
