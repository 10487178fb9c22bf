"""``gamead up --die-with-parent``: notice that the process that started ``gamead up`` (``make up``'s ``make``,
a CI step, an IDE's run button) is gone, however it died (SIGKILL included), and stop the stack as on SIGTERM.

How: a daemon thread reads ``os.getppid()`` once a second and compares it with the PPID ``gamead up`` read
first thing; once it differs, the parent is gone (Linux reparents an orphan to init or to the nearest
subreaper, never back to the same PID). Why not ``prctl(PR_SET_PDEATHSIG)`` (which its own children get,
:func:`gamead_core.proc.die_with_parent`): it fires when the parent's *thread* that forked us exits, so a
threaded parent (a test runner, an IDE, a CI agent starting processes from worker threads) would stop a stack
whose parent process still runs; and a parent dead before the ``prctl`` call is never signalled. Polling costs
one system call a second and notices within a second, during the start too. A parent that dies before
``gamead up`` reads its PPID (its imports, well under a second) is not noticed.

Opt-in (the Makefile's ``up`` passes it), never the default: ``nohup gamead up &`` from a shell that then exits
orphans ``gamead up`` on purpose, and that stack must keep running (attack28a F5).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

#: seconds between two readings of ``os.getppid()``
EVERY = 1.0


def parent_gone(started_by: int, now: int) -> bool:
    """True once ``now`` (``os.getppid()`` at a reading) is no longer ``started_by`` (the PPID at the start):
    the parent died and this process was reparented (to init, PID 1, or a subreaper)."""
    return now != started_by


def watch_parent(started_by: int, on_gone: Callable[[int], None], done: threading.Event,
                 every: float = EVERY) -> threading.Thread:
    """Start a daemon thread reading ``os.getppid()`` every ``every`` s (from the moment it starts); the first
    time :func:`parent_gone` says so it calls ``on_gone(started_by)`` once, from that thread, and ends. It also
    ends, saying nothing, once ``done`` is set (the stack stopping for another reason). Returns the thread."""

    def watch() -> None:
        while not done.is_set():
            if parent_gone(started_by, os.getppid()):
                on_gone(started_by)
                return
            done.wait(every)

    thread = threading.Thread(target=watch, name="gamead-up-parent-watch", daemon=True)
    thread.start()
    return thread
