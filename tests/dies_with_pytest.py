"""Every process a test starts dies with the pytest process that started it, however that dies (rule 4, leak34).

``tests.support.Proc``, ``EmbeddedNats``, the cluster and Valkey fixtures pass
:func:`gamead_core.proc.die_with_parent` as ``preexec_fn``; a plain ``subprocess.Popen`` in a test did not (a
nats-server of test_write_guard, test_repartition_refusal, test_embedded_start and test_kubernetes_backend, the
skewed lease holders of test_clock_skew_lease, the ``gamead worker`` that test_up_nats_secret starts from the
printed hint, the CLI runs of tests/cli), so a pytest killed mid-test (SIGKILL, or SIGTERM, whose default action
runs no teardown) left them running with ppid 1. Imported by ``tests/conftest.py`` (and
``tests/support.py``), it makes it the default: every ``Popen`` made in pytest's main thread asks the
kernel for SIGTERM when that thread — pytest itself — exits (``PR_SET_PDEATHSIG``, kept across ``exec``), before
the ``preexec_fn`` it was given, if any.

Only the main thread's: the signal follows the *thread* that forked, so a child started from a short-lived
thread would get it when that thread ends (the fork server is one such, and says so). What a test's child starts
in turn (a grandchild) is that child's to stop: ``gamead up`` and the worker's own children do.

A parent-death SIGTERM is not enough on its own: one pending on a process a test stopped (SIGSTOP, ``frozen``) is
never acted on, and one whose stop hangs ignores it. So every child (``Popen`` from any thread, and the fork
server's, :func:`record`) is also written to this pytest's undertaker (``tests/undertaker.py``), which, once pytest
is gone however, sends each still alive SIGCONT and SIGTERM, then SIGKILL 45 s later.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gamead_core.proc import die_with_parent, start_time

_INIT = subprocess.Popen.__init__
_PYTEST = os.getpid()


def chained(first: Callable[[], None] | None, then: Callable[[], None] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` running ``first`` then ``then`` (either may be None)."""
    if first is None or then is None:
        return first or then

    def both() -> None:
        first()
        then()

    return both


_LOCK = threading.Lock()
_UNDERTAKER: list[subprocess.Popen[bytes]] = []


def _undertaker() -> subprocess.Popen[bytes] | None:
    """This pytest's undertaker, started on first use (None in another process, e.g. a fork of pytest)."""
    if os.getpid() != _PYTEST:
        return None
    if not _UNDERTAKER:
        script = Path(__file__).with_name("undertaker.py")
        _UNDERTAKER.append(subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                                            stdout=subprocess.DEVNULL, start_new_session=True, _undertaker=True))
    return _UNDERTAKER[0]


def record(pid: int) -> None:
    """Have the undertaker end process ``pid`` (with its start time now) once this pytest is gone."""
    start = start_time(pid)
    if start is None:
        return
    with _LOCK:
        keeper = _undertaker()
        if keeper is not None and keeper.stdin is not None:
            try:
                keeper.stdin.write(f"{pid} {start}\n".encode())
                keeper.stdin.flush()
            except OSError:  # it died: the parent-death signal is left
                pass


def _popen_init(self: subprocess.Popen[Any], *args: Any, preexec_fn: Callable[[], None] | None = None,
                _undertaker: bool = False, **kwargs: Any) -> None:
    if _undertaker or os.getpid() != _PYTEST:
        _INIT(self, *args, preexec_fn=preexec_fn, **kwargs)
        return
    if threading.current_thread() is threading.main_thread():
        preexec_fn = chained(die_with_parent(), preexec_fn)
    _INIT(self, *args, preexec_fn=preexec_fn, **kwargs)
    record(self.pid)


def install() -> None:
    """Make :func:`die_with_parent` the default of every ``Popen`` of this process's main thread (idempotent)."""
    subprocess.Popen.__init__ = _popen_init  # type: ignore[method-assign]


install()
