"""Waiting on a process while it works: a deadline a loaded machine cannot outrun, a stuck process still fails.

A fixed deadline on what a process does next counts the CPU it is given: at load 40 on 2 cores a process gets ~5 %
of one (the API of a full-suite run had used 0.5 s of CPU 15 s after its start), so 1 s of CPU takes ~20 s. As
``gamead up`` waits on its children's start (:class:`gamead_core.start_watch.StartWatch`), :class:`Working` counts
its CPU time advancing, or its waiting for a CPU (state ``R``) or a disk (``D``), as progress: a wait fails once the
process made none for ``stall_after`` seconds, or after ``cap`` seconds whatever it did, or at once when it is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gamead_core.proc import cpu_sample
from gamead_core.start_watch import StartWatch


class Working:
    """The progress of process ``pid`` since now; :meth:`check` between the polls of a wait."""

    def __init__(self, pid: int, *, stall_after: float, cap: float) -> None:
        self.pid = pid
        self.watch = StartWatch(time.monotonic(), stall_after=stall_after, cap=cap)

    def check(self, what: str | Callable[[], str]) -> None:
        """Raise ``AssertionError`` naming ``what`` (a callable: asked then, e.g. the process's log) if the process
        is gone, made no progress for ``stall_after`` s, or ``cap`` s have passed; else return."""
        sample = cpu_sample(self.pid)
        now = time.monotonic()
        verdict = "gone" if sample is None or sample.state == "Z" else self.watch.observe(now, sample)
        if verdict == "wait":
            return
        told = what() if callable(what) else what
        why = {"gone": "the process is gone", "cap": f"{self.watch.cap:g}s passed (cap)",
               "stalled": f"no progress for {self.watch.stall_after:g}s"}.get(verdict, verdict)
        raise AssertionError(f"pid {self.pid} {why} after {now - self.watch.started:.1f}s "
                             f"({self.watch.cpu_seconds}s of CPU, state {self.watch.state}): {told}")


__all__ = ["Working"]
