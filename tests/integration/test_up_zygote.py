"""A test's ``gamead up`` forks its own children from a zygote (``tests/up_zygote.py``), and they are still ``up``'s
children as a ``Popen`` child is: ``up`` is their parent, each leads a process group of its own in ``up``'s session,
the state file lists exactly them, a child killed is named and restarted, and none outlives ``up`` SIGKILLed.

Figure (before the zygote, session 37): each of the stack's API and two workers was a fresh interpreter
(``/proc/<pid>/cmdline`` ``python -m gamead_cli serve``), and the stack took 25.0 s to be ready at load ~13 beside
2.8 s forked (``/tmp/suite37/smoke.py``, same minute)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.support import UP_CHILDREN_FORKED, children_of, pid_alive, up_stack, wait_for

pytestmark = pytest.mark.skipif(not UP_CHILDREN_FORKED, reason="GAMEAD_TEST_FORKSERVER_UP=0")


def _stat(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` after the name: state, ppid, pgid, sid, …"""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


@pytest.mark.timeout(300)
def test_ups_children_are_forked_and_still_ups_own(tmp_path: Path) -> None:
    up = up_stack(tmp_path, "--workers", "2").start()
    try:
        up.wait_ready()
        named = {str(e["name"]): int(str(e["pid"])) for e in up.started()}
        gamead = {name: pid for name, pid in named.items() if name != "nats-server"}
        assert sorted(gamead) == ["api", "worker-1", "worker-2"]
        for name, pid in gamead.items():
            _, ppid, pgid, sid = _stat(pid)[:4]
            assert (int(ppid), int(pgid), int(sid)) == (up.pid, pid, int(_stat(up.pid)[3])), name
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            assert argv[1].endswith(b"forkserver.py"), (name, argv)  # forked, not `python -m gamead_cli`
        assert sorted(children_of(up.pid)) == sorted(named.values())  # the zygote is not one of up's listed

        os.kill(gamead["worker-1"], signal.SIGKILL)  # up reaps it, says so and starts another, forked too
        again = wait_for(lambda: (pid := up.running_pid("worker-1")) != gamead["worker-1"] and pid,
                         timeout=60, what="worker-1 restarted")
        assert Path(f"/proc/{again}/cmdline").read_bytes().split(b"\0")[1].endswith(b"forkserver.py")
        assert "worker-1" in up.output() and str(gamead["worker-1"]) in up.output()

        everything = [pid for pid in {*named.values(), again} if pid_alive(pid)]
        os.kill(up.pid, signal.SIGKILL)
        wait_for(lambda: not any(pid_alive(pid) for pid in everything), timeout=30,
                 what="every child of the SIGKILLed up to end")
    finally:
        up.kill_everything()
