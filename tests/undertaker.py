"""The undertaker of one pytest process (``tests/dies_with_pytest.py``): ends what it started, once it is gone.

``python tests/undertaker.py``, started by pytest with a pipe on stdin and ``PR_SET_PDEATHSIG``: pytest writes
``PID START`` (``/proc/PID/stat`` field 22) for every process it starts. When the pipe closes or SIGTERM comes
(pytest ended or died, however), every recorded process still alive with that start time (never a later process
that reused the PID) gets SIGCONT (one stopped by a test, SIGSTOP or a frozen cgroup, never runs the parent-death
SIGTERM pending on it) and SIGTERM; those still alive :data:`GRACE` seconds later get SIGKILL (a stop that hangs:
the bound of every role, gamead_core.stop_bound, is shorter). Then it exits.

Only run as a script: it must not import pytest, the test package or gamead.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

#: seconds between the SIGTERM and the SIGKILL: over the longest role bound (a worker's 25 + 18 s)
GRACE = 45.0


def _started(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])


def main() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # read to the end of the pipe first; PDEATHSIG wakes nothing
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches pytest, whose teardowns stop what it started
    recorded: dict[int, int] = {}
    buffer = b""
    while chunk := os.read(0, 1 << 16):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            pid, start = line.split()
            recorded[int(pid)] = int(start)
    left = [pid for pid, start in recorded.items() if _started(pid) == start]
    for pid in left:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
    deadline = time.monotonic() + GRACE
    while (left := [pid for pid in left if _started(pid) == recorded[pid]]) and time.monotonic() < deadline:
        select.select([], [], [], 0.2)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    sys.exit(0)


if __name__ == "__main__":
    main()
