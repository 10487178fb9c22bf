"""Is a starting process slow or stuck? Waiting on a start for as long as the process makes progress.

A fixed deadline cannot tell a slow start from a stuck one: on a loaded machine (load 20 on 2 cores) importing
the API took 18.6 s of wall time for 3.3 s of CPU, and ``gamead up`` gave up after its fixed 30 s in 4 starts of
7. As the liveness probe of the workers does (:mod:`gamead_core.scaling.probe`), :class:`StartWatch` looks at the
process (:func:`gamead_core.proc.cpu_sample`): its CPU time advancing, or its being runnable (state ``R``:
waiting for a CPU) or in a disk wait (``D``), is progress; a start is given up after ``stall_after`` seconds
without any, or after ``cap`` seconds whatever it does. Once the process answers (:meth:`StartWatch.serving`: its
imports and bind are done), what is left is not a slow start: it gets ``stall_after`` seconds from its first
answer, CPU or not (an API retrying an unreachable NATS uses a little CPU for ever). Pure bookkeeping, clocked
by the caller (seconds of ``time.monotonic()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gamead_core.proc import CpuSample

#: CPU seconds a process must use for a reading to count as progress (a retry loop's ticks do not)
MIN_CPU = 0.05
#: scheduler states that are progress without CPU: runnable (waiting for a CPU), uninterruptible (disk) wait
WAITING_STATES = frozenset({"R", "D"})


@dataclass
class StartWatch:
    """The progress of one starting process. ``stall_after``: seconds without progress before :meth:`observe`
    says ``stalled``; ``cap``: seconds after ``started`` before it says ``cap``; ``note_after``: seconds after
    which :meth:`note_due` is True once (time to say the start is slow and why it is waited for)."""

    started: float
    stall_after: float = 30.0
    cap: float = 180.0
    note_after: float = 15.0
    progress_at: float = field(init=False)
    cpu_seconds: float | None = field(default=None, init=False)  #: the process's CPU time at the last reading
    state: str | None = field(default=None, init=False)  #: its scheduler state at the last reading
    serving_since: float | None = field(default=None, init=False)  #: when it first answered (None: not yet)
    _cpu_base: float | None = field(default=None, init=False)
    _noted: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.progress_at = self.started

    def observe(self, now: float, sample: CpuSample | None) -> str:
        """Take one reading (``sample``: None if the process cannot be read) at ``now``; returns ``wait``
        (keep waiting), ``stalled`` (no progress for ``stall_after`` s), ``unready`` (answering, not ready, for
        ``stall_after`` s) or ``cap`` (``cap`` s since the start)."""
        if sample is not None:
            self.cpu_seconds, self.state = sample.cpu_seconds, sample.state
            if self._cpu_base is None:
                self._cpu_base = sample.cpu_seconds
            if sample.cpu_seconds - self._cpu_base >= MIN_CPU or sample.state in WAITING_STATES:
                self.progress_at, self._cpu_base = now, sample.cpu_seconds
        if now - self.started >= self.cap:
            return "cap"
        if self.serving_since is not None:
            return "unready" if now - self.serving_since >= self.stall_after else "wait"
        if now - self.progress_at >= self.stall_after:
            return "stalled"
        return "wait"

    def serving(self, now: float) -> None:
        """The process answered (at ``now``): its start is done, whether or not it is ready."""
        if self.serving_since is None:
            self.serving_since = now

    def note_due(self, now: float) -> bool:
        """True once, the first time it is asked ``note_after`` s or more after the start."""
        if self._noted or self.serving_since is not None or now - self.started < self.note_after:
            return False
        self._noted = True
        return True

    def idle_for(self, now: float) -> float:
        """Seconds since the last progress seen."""
        return now - self.progress_at


__all__ = ["MIN_CPU", "WAITING_STATES", "StartWatch"]
