"""words56b F1: ``gamead dlq jobs JOB --follow | cat`` (stdout a pipe) printed nothing while the job ran, only the
end: a script following a job saw 8 s of nothing, then the interrupted line. To a pipe it now writes one line per
change of the job's progress as it comes, flushed; with ``-o json`` each streamed job document as one JSON line
(NDJSON; README ``dlq jobs``). The server: a running job whose follow stream sends one document, then holds."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.hostile_http import JOB, HostileServer
from tests.support import Proc, clean_env, gamead_argv, wait_for

JOB_ID = json.loads(JOB)["id"]


def _running_lines(output: str, json_lines: bool) -> list[str]:
    if not json_lines:
        return [ln for ln in output.splitlines() if ln.startswith(f"job {JOB_ID} running: replaying · replayed 0")]
    return [ln for ln in output.splitlines() if ln.startswith("{") and json.loads(ln).get("state") == "running"]


@pytest.mark.parametrize("json_lines", [False, True], ids=["table", "json"])
def test_a_job_followed_to_a_pipe_says_its_progress_while_it_runs(tmp_path: Path, json_lines: bool) -> None:
    server = HostileServer("running_job").start()
    argv = gamead_argv("dlq", "jobs", JOB_ID, "--follow", "--api", server.url, *(["-o", "json"] if json_lines else []))
    proc = Proc("cli", argv, clean_env(COLUMNS="300"), tmp_path / "cli.log", cwd=tmp_path).start()  # stdout: a file
    try:
        said = wait_for(lambda: _running_lines(proc.output(), json_lines), timeout=60,
                        what="the running job's progress line, while the job runs")
        assert proc.alive() and len(said) == 1, proc.output()  # still following: the line came as the job ran
        proc.signal(signal.SIGTERM)
        assert proc.popen is not None and proc.popen.wait(timeout=30) == 143, proc.output()
    finally:
        proc.kill()
        server.stop()
    assert f"error: interrupted (SIGTERM): job {JOB_ID} continues on the server" in proc.output(), proc.output()
