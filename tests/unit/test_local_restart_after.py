"""attack44c F2: ``gamead up`` restarts a dead worker with the pid it reaped (``--after-pid``), so the restart
takes the id's registry entry over at once (gamead_core.registry.claim.reaped) instead of watching it. Real child
processes under the real Supervisor; the worker command is a sleeping Python, its command line read from /proc."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from gamead_core.scaling.local import LocalScaler
from gamead_core.supervisor import Supervisor
from tests.support import wait_for


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def test_a_restart_carries_the_pid_of_the_worker_that_died(tmp_path: Path) -> None:
    """The first start has no ``--after-pid``; the restart after a SIGKILL has the dead child's pid. Figures (first
    start's flag, restart's flag): with the fix (none, the dead pid); without (none, none): the restart then watched
    the dead entry for its heartbeat interval + 1 s (21 s with a 20 s heartbeat)."""
    sup = Supervisor(on_event=lambda _: None)
    scaler = LocalScaler(sup, argv=lambda wid: [sys.executable, "-c", "import time; time.sleep(60)", "--id", wid],
                         env=dict(os.environ), log_dir=tmp_path, drain_timeout=1)
    try:
        scaler.set_replicas(1)
        child = sup.children["worker-1"]
        first = child.pid or 0
        assert "--after-pid" not in _cmdline(first)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: (sup.poll(), scaler.poll(), child.pid not in (None, first))[2], timeout=15,
                 what="worker-1 restarted")
        line = _cmdline(child.pid or 0)
        assert line[-4:] == ["--id", "local-1", "--after-pid", str(first)], line
    finally:
        scaler.set_replicas(0)
        sup.stop_all(timeout=5)
