"""An idle fork server sleeps until it has something to do (testcpu60).

Every pytest process of ``make test`` keeps a fork server (``tests/forkserver.py``) for the whole run. It woke every
50 ms to look for ended children (``select`` with a 0.05 s timeout, then ``wait4``): ~20 wakeups a second, ~0.1 %
of a core per server, ten servers for all of a run. It now sleeps in ``select`` with no timeout and is woken by a
request or by SIGCHLD (its wakeup pipe); a child's end is still reported, without the tick."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support import ForkServer, clean_env

#: the span over which the idle server's wakeups are counted (an observation window, not a wait for a state)
WINDOW = 2.0


def _sleeps(pid: int) -> int:
    """How many times process ``pid`` has gone to sleep of its own accord (``voluntary_ctxt_switches``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError(f"no voluntary_ctxt_switches for {pid}")


def test_an_idle_fork_server_sleeps_until_a_request_or_a_childs_end(tmp_path: Path) -> None:
    """A server of its own (no other test's child ends into it): a forked ``gamead --version``'s end is reported
    with its code, then the idle server does not wake in ``WINDOW`` s. Before: 22 wakeups in 1 s alone (50 ms)."""
    server = ForkServer()
    try:
        child = server.start(["--version"], clean_env(), tmp_path / "version.log")
        assert child.wait(60) == 0, (tmp_path / "version.log").read_text()
        assert "gamead" in (tmp_path / "version.log").read_text()
        before = _sleeps(server.popen.pid)
        time.sleep(WINDOW)
        woke = _sleeps(server.popen.pid) - before
        assert woke <= 1, f"the idle fork server woke {woke} times in {WINDOW} s"
        again = server.start(["--version"], clean_env(), tmp_path / "again.log")  # still answers, still reaps
        assert again.wait(60) == 0
    finally:
        assert server.popen.stdin is not None
        server.popen.stdin.close()
        server.channel.close()
        server.popen.wait(30)
