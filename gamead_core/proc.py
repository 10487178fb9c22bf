"""Facts about processes and ports on this machine, and the two ways a child learns its parent has died.

* :func:`die_with_parent` — a ``preexec_fn`` for :class:`subprocess.Popen`: on Linux it asks the kernel
  (``prctl(PR_SET_PDEATHSIG)``, see prctl(2)) to send the child a signal when the thread that started it
  exits, whatever killed it (SIGKILL included). It runs in the child before ``exec``, so it works for any
  program (nats-server too). Spawn from a long-lived thread (the main thread): the signal follows the
  *thread*, not the process.
* :func:`watch_parent` — the fallback where ``prctl`` is missing: a daemon thread in a Python child that
  polls ``os.getppid()`` and sends the process SIGTERM once it no longer matches the parent it was started
  by (``GAMEAD_PARENT_PID``). ``gamead`` starts it for every subcommand run under ``gamead up``.
* :func:`port_free`, :func:`port_owned_by` — is a TCP port taken (a host no listener can bind: said in words), and
  is it held by *this* PID (from ``/proc/net/tcp*`` and ``/proc/<pid>/fd``, Linux; ``None`` = cannot tell)? Only
  the given PID's own entries are read: nothing scans other processes.
* :func:`start_time` — a PID's start time (``/proc/<pid>/stat`` field 22), so a recorded PID is never
  confused with a later process that reused the number.
* :func:`cpu_sample` — a PID's scheduler state and CPU time so far (``/proc/<pid>/stat`` fields 3, 14, 15):
  tells a process starved of CPU (running, its CPU time advancing) from a stopped or hung one.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gamead_core.libc import libc_function
from gamead_core.listen import bind_once

#: env var naming the PID of the ``gamead up`` that started a child (read by :func:`watch_parent`)
PARENT_PID_ENV = "GAMEAD_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
#: clock ticks per second of /proc/<pid>/stat's CPU times (USER_HZ, 100 on Linux)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_prctl: Callable[..., int] | None = libc_function("prctl") if sys.platform.startswith("linux") else None


def pdeathsig_supported() -> bool:
    """True where the kernel can signal a child when its parent dies (Linux)."""
    return _prctl is not None


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child receive ``sig`` when this (thread of this) process dies.

    Returns ``None`` where unsupported (pass it to ``Popen`` as is). Everything is resolved before the
    fork; in the child it only makes two system calls. If the parent died between fork and ``prctl``,
    the child exits at once instead of running orphaned.
    """
    prctl = _prctl
    if prctl is None:
        return None
    parent = os.getpid()
    signum = ctypes.c_ulong(int(sig))
    zero = ctypes.c_ulong(0)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, zero, zero, zero)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def watch_parent(interval: float = 1.0) -> threading.Thread | None:
    """If ``GAMEAD_PARENT_PID`` is set, SIGTERM this process once its parent is no longer that PID.

    The portable fallback of :func:`die_with_parent` for Python children; harmless beside it. Returns the
    daemon thread, or ``None`` when the variable is unset or malformed.
    """
    try:
        parent = int(os.environ.get(PARENT_PID_ENV, ""))
    except ValueError:
        return None

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="gamead-parent-watch", daemon=True)
    thread.start()
    return thread


def _stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3, the state, first: the name, in
    parentheses, may hold spaces and ``)``). Raises OSError when the file cannot be read."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    """Clock ticks after boot at which ``pid`` started (``/proc/<pid>/stat`` field 22); None if unknown."""
    try:
        return int(_stat_fields(pid)[19])
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class CpuSample:
    """One reading of a process: its scheduler ``state`` (``/proc/<pid>/stat`` field 3: ``R`` running or
    runnable, ``S`` sleeping, ``D`` uninterruptible, ``T``/``t`` stopped or traced, ``Z`` zombie) and
    ``cpu_seconds``, the user + system CPU time it has used since it started (fields 14 + 15, seconds)."""

    state: str
    cpu_seconds: float


def cpu_sample(pid: int) -> CpuSample | None:
    """``pid``'s state and CPU time now (:class:`CpuSample`); None if it is gone or /proc cannot tell."""
    try:
        fields = _stat_fields(pid)
        return CpuSample(fields[0], (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS)
    except (OSError, IndexError, ValueError):
        return None


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return _stat_fields(pid)[0] != "Z"
    except OSError:
        return True  # no /proc: trust kill(0)


def port_free(host: str, port: int) -> bool:
    """True if a listener could bind ``host:port`` now (with SO_REUSEADDR, as uvicorn and nats-server do); False if
    the port is taken (or not ours: below 1024). Raises :class:`~gamead_core.listen.HostRefused` (a ConfigError, exit
    5, and an OSError), in words, for a host no listener can bind whatever the port (not this machine's, a family it
    has not, a name that does not resolve: :func:`~gamead_core.listen.host_words`); any other OSError as is."""
    try:
        bind_once(host, port)
    except OSError as exc:  # HostRefused (errno None) included: raised
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        raise
    return True


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP ``port`` (any address), from ``/proc/net/tcp`` and ``tcp6``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_owned_by(pid: int, port: int) -> bool | None:
    """Does process ``pid`` hold the listening socket of TCP ``port``? ``None`` where /proc cannot tell."""
    if not Path("/proc/net/tcp").exists():
        return None
    inodes = _listening_inodes(port)
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


__all__ = [
    "PARENT_PID_ENV",
    "CpuSample",
    "alive",
    "cpu_sample",
    "die_with_parent",
    "pdeathsig_supported",
    "port_free",
    "port_owned_by",
    "start_time",
    "watch_parent",
]
