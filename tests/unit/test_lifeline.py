"""Children die with their parent, one ``gamead up`` per data dir, ports checked by owner (real processes)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gamead_core.datadir import DataDir, DataDirBusy
from gamead_core.proc import PARENT_PID_ENV, pdeathsig_supported, port_free, port_owned_by, start_time
from tests.support import clean_env, pid_alive, wait_for

PARENT = """
import subprocess, sys, time
from gamead_core.proc import die_with_parent
child = subprocess.Popen(sys.argv[1:], preexec_fn=die_with_parent())
print(child.pid, flush=True)
time.sleep(120)
"""


def _parent_with_child(*child_argv: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, *child_argv], stdout=subprocess.PIPE, text=True,
                              env=env or clean_env(), start_new_session=True)
    assert parent.stdout is not None
    return parent, int(parent.stdout.readline())


@pytest.mark.skipif(not pdeathsig_supported(), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_child_started_with_die_with_parent_dies_when_the_parent_is_sigkilled() -> None:
    parent, child = _parent_with_child("sleep", "120")
    try:
        assert pid_alive(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        wait_for(lambda: not pid_alive(child), timeout=10, what="the orphan to get its SIGTERM")
    finally:
        for pid in (parent.pid, child):
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_parent_watch_stops_a_python_child_where_the_kernel_cannot() -> None:
    """The fallback: no prctl here (a plain Popen), only the child's own watch of GAMEAD_PARENT_PID."""
    watcher = "import time; from gamead_core.proc import watch_parent; watch_parent(0.1); time.sleep(120)"
    script = PARENT.replace("preexec_fn=die_with_parent()",  # as the supervisor does: the parent names itself
                            "env={**__import__('os').environ, 'GAMEAD_PARENT_PID': str(__import__('os').getpid())}")
    parent = subprocess.Popen([sys.executable, "-c", script, sys.executable, "-c", watcher], stdout=subprocess.PIPE,
                              text=True, env=clean_env(), start_new_session=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        wait_for(lambda: pid_alive(child) and start_time(child) is not None, timeout=10, what="the child")
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        wait_for(lambda: not pid_alive(child), timeout=10, what="the child to notice its parent died")
    finally:
        for pid in (parent.pid, child):
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert PARENT_PID_ENV == "GAMEAD_PARENT_PID"


def test_one_stack_per_data_dir_and_the_lock_of_a_dead_holder_is_free(tmp_path: Path) -> None:
    mine = DataDir(tmp_path)
    mine.lock()
    try:
        with pytest.raises(DataDirBusy, match=f"in use by another `gamead up` \\(pid {os.getpid()}\\)"):
            DataDir(tmp_path).lock()
    finally:
        mine.unlock()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from gamead_core.datadir import DataDir; d = DataDir(Path(sys.argv[1])); d.lock(); "
                               "print('locked', flush=True); time.sleep(120)", str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, env=clean_env())
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    with pytest.raises(DataDirBusy, match=f"pid {holder.pid}"):
        DataDir(tmp_path).lock()
    holder.kill()
    holder.wait(10)
    again = DataDir(tmp_path)
    again.lock()  # the kernel dropped the dead holder's flock: nothing stale to clean up
    again.unlock()


def test_a_recorded_pid_is_a_stray_only_with_its_own_start_time(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "120"])
    try:
        data = DataDir(tmp_path)
        data.lock()
        data.record("nats-server", sleeper.pid)
        assert [e["pid"] for e in data.strays()] == [sleeper.pid]
        doc = data.state_file.read_text().replace(f'"start": {start_time(sleeper.pid)}', '"start": 1')
        data.state_file.write_text(doc)  # the same PID, but another process (a reused number)
        assert data.strays() == []
        data.unlock()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_port_checks_name_the_owner(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_free("127.0.0.1", port)
        assert port_owned_by(os.getpid(), port) in (True, None)  # None where /proc cannot tell
        other = subprocess.Popen(["sleep", "120"])
        try:
            assert port_owned_by(other.pid, port) in (False, None)
        finally:
            other.kill()
            other.wait()
    assert port_free("127.0.0.1", port)
