"""A process a test starts with a plain ``subprocess.Popen`` dies with pytest, however pytest dies (rule 4, leak34;
``tests/dies_with_pytest.py``). Figure: a pytest run (loading the suite's conftest) whose test started ``sleep 300``
without ``preexec_fn``, killed by SIGKILL or SIGTERM mid-test, left the ``sleep`` running with ppid 1 (before: as
the nats-servers of test_write_guard and test_repartition_refusal, the skewed lease holders and the worker of
test_up_nats_secret would have been); one the test had stopped (SIGSTOP, as ``frozen`` does) stayed, in state T,
even with its parent-death SIGTERM (pending, never acted on): now pytest's undertaker sends it SIGCONT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gamead_core.proc import alive, start_time
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[2]
INNER = '''
import os, signal, subprocess, threading

def test_starts_a_plain_child_then_blocks():
    child = subprocess.Popen(["sleep", "300"])  # no preexec_fn: as a test might
    if os.environ["LEAK34_FROZEN"] == "1":
        os.kill(child.pid, signal.SIGSTOP)  # as tests.support.frozen does: a parent-death SIGTERM waits on it
    with open(os.environ["LEAK34_PIDFILE"], "w") as out:
        out.write(str(child.pid))
    threading.Event().wait(300)
'''


@pytest.mark.parametrize("frozen", [False, True], ids=["running", "stopped"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_plain_popen_of_a_test_dies_with_its_pytest(tmp_path: Path, sig: int, frozen: bool) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    pidfile = tmp_path / "pid"
    env = {**os.environ, "LEAK34_PIDFILE": str(pidfile), "LEAK34_FROZEN": str(int(frozen)),
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # the suite's conftest alone: not 1.5 CPU-s of installed plugins
    inner = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-p", "tests.conftest", str(tmp_path / "test_inner.py")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    child = started = None
    try:
        child = wait_for(lambda: int(pidfile.read_text()) if pidfile.exists() and pidfile.read_text() else None,
                         timeout=60, what="the inner test's child")
        started = start_time(child)
        inner.send_signal(sig)
        inner.wait(30)
        gone = wait_for(lambda: not alive(child), timeout=10, what=f"the child {child} to die with its pytest")
        assert gone
    finally:
        if inner.poll() is None:
            inner.kill()
            inner.wait()
        if child is not None and alive(child) and start_time(child) == started:
            os.kill(child, signal.SIGKILL)  # ours (recorded PID, same start time): never left behind
