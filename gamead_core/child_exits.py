"""The kernel's word that a child process ended, for ``gamead up``'s supervisor (idle56): it looked at every child
every 0.2 s (``Popen.poll``: a ``wait4`` each, ~25 a second for a stack of 2 workers, idle or not; issue 14 item 1).

:class:`ChildExits` holds a pidfd (``os.pidfd_open``, Linux 5.3+) of each running child, read by the event loop
(``loop.add_reader``): it turns readable once the process has ended, and :attr:`ChildExits.news` is set. Between
ends the supervisor sleeps until what it has due (:func:`next_due`: a restart after its back-off, the logs' size
check once one grew (:mod:`gamead_core.log_growth`), a rewrite of ``gamead-up.json`` to retry) or its stop. Where
``pidfd_open`` is missing or fails (an older kernel, no descriptor left) it looks every :data:`FALLBACK_EVERY` s,
as before.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable

from gamead_core.scaling.retry import wait_any
from gamead_core.supervisor import Supervisor

#: seconds between two looks at the children where the kernel cannot tell (no ``pidfd_open``)
FALLBACK_EVERY = 0.2


def running_pids(sup: Supervisor) -> list[int]:
    """The PIDs of ``sup``'s children whose end :meth:`Supervisor.poll` acts on: not retired, not refused, not found
    dead yet. Pure."""
    return [c.proc.pid for c in sup.children.values()
            if c.proc is not None and not c.retired and c.refused is None and c.restart_at is None]


def next_due(sup: Supervisor, *also: float | None) -> float | None:
    """The monotonic time (s) :meth:`Supervisor.poll` next has something to do but a child's end: the earliest
    restart after its back-off, or of ``also``, the caller's other times due (None: none; ``gamead up``'s: the next
    look at the logs' sizes, :meth:`gamead_core.log_growth.LogGrowth.due`, and the state file's rewrite to retry,
    :attr:`gamead_core.datadir.DataDir.retry_at`), or None: nothing. Pure."""
    times = [c.restart_at for c in sup.children.values() if c.restart_at is not None and not c.retired
             and c.refused is None]
    times += [t for t in also if t is not None]
    return min(times, default=None)


class ChildExits:
    """Pidfds of running children, read by the running event loop; :attr:`news` set when one ends."""

    def __init__(self) -> None:
        self.news = asyncio.Event()  #: a watched child ended, or :meth:`poke`: poll now
        self.fallback = not hasattr(os, "pidfd_open")  #: the kernel cannot tell: look every FALLBACK_EVERY s
        self._fds: dict[int, int] = {}  # pid -> its pidfd

    def poke(self) -> None:
        """What is due changed outside :meth:`Supervisor.poll` (a worker started, a restart brought forward)."""
        self.news.set()

    def watch(self, pids: Iterable[int]) -> None:
        """Watch each of ``pids`` (children not reaped yet: the PID is theirs) not watched yet; forget the others.
        A PID already gone sets :attr:`news`; ``pidfd_open`` failing otherwise turns :attr:`fallback` on. Call it
        from the event loop's thread."""
        loop, want = asyncio.get_running_loop(), set(pids)
        for pid in set(self._fds) - want:
            self._forget(pid)
        for pid in want - set(self._fds):
            if self.fallback:
                return
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                self.news.set()
                continue
            except OSError:  # ENOSYS (a kernel before 5.3), EMFILE, a seccomp filter: look on a clock instead
                self.fallback = True
                continue
            self._fds[pid] = fd
            loop.add_reader(fd, self._ended, pid)

    def _ended(self, pid: int) -> None:
        self._forget(pid)
        self.news.set()

    def _forget(self, pid: int) -> None:
        fd = self._fds.pop(pid, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    async def wait(self, stop: asyncio.Event, due: float | None) -> None:
        """Until a watched child ends or :meth:`poke`, ``stop`` is set, or the monotonic time ``due`` (None: no
        bound; :data:`FALLBACK_EVERY` s at most in :attr:`fallback`); then :attr:`news` is cleared."""
        timeout = None if due is None else max(due - time.monotonic(), 0.0)
        if self.fallback:
            timeout = FALLBACK_EVERY if timeout is None else min(timeout, FALLBACK_EVERY)
        await wait_any(stop, self.news, timeout=timeout)
        self.news.clear()

    def close(self) -> None:
        """Close every pidfd (from the event loop's thread)."""
        for pid in list(self._fds):
            self._forget(pid)
