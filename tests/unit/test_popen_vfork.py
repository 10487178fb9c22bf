"""A plain ``subprocess.Popen`` of a test (and ``EmbeddedNats``'s, the Valkey and cluster fixtures') dies with pytest
without forking pytest (``tests/dies_with_pytest.py``, testcpu60).

The parent-death SIGTERM every child of pytest's main thread gets was a ``preexec_fn``, and a ``preexec_fn`` makes
``Popen`` fork pytest instead of ``vfork`` it: ~24 ms of CPU a start at a worker's ~300 MiB (its page tables copied,
then copy-on-write faults in the child and in pytest), ~900 starts a run. Such a start now runs its program through
``setpriv --pdeathsig TERM``: the same signal, the same process."""

from __future__ import annotations

import resource
import shutil
import signal
import subprocess
import sys

import pytest

from gamead_core.proc import die_with_parent

#: prints the parent-death signal the kernel holds for this process (``PR_GET_PDEATHSIG``)
SAYS_ITS_DEATH_SIGNAL = ("import ctypes; libc = ctypes.CDLL(None); sig = ctypes.c_int(0); "
                         "libc.prctl(2, ctypes.byref(sig), 0, 0, 0); print(sig.value)")

needs_setpriv = pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")


@pytest.mark.parametrize("preexec", [None, "die_with_parent"])
def test_a_plain_popen_child_gets_sigterm_when_pytest_dies(preexec: str | None) -> None:
    """With no ``preexec_fn`` or :func:`die_with_parent`'s: the child's parent-death signal is SIGTERM, and ``args``
    is the argv the test gave."""
    argv = [sys.executable, "-I", "-S", "-c", SAYS_ITS_DEATH_SIGNAL]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True,
                             preexec_fn=die_with_parent() if preexec else None)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    assert int(out) == signal.SIGTERM
    assert child.args == argv


@needs_setpriv
def test_a_plain_popen_does_not_fork_pytest() -> None:
    """20 starts of ``true``: pytest's own page faults (its pages copied on write after a fork). Before: ~320 a start
    (a fork of pytest for the ``preexec_fn``); with ``vfork``, none."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        assert subprocess.Popen(["true"], preexec_fn=die_with_parent()).wait(60) == 0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    assert faults < 20 * 30, f"pytest took {faults} page faults for 20 starts"


def test_a_program_that_is_not_there_is_popens_own_error() -> None:
    with pytest.raises(FileNotFoundError):
        subprocess.Popen(["no-such-program-testcpu60"])


def test_a_preexec_fn_of_its_own_still_runs() -> None:
    """Any other ``preexec_fn`` keeps the fork: it runs in the child (here: a process group of its own)."""
    import os

    child = subprocess.Popen([sys.executable, "-I", "-S", "-c", "import os; print(os.getpgid(0) == os.getpid())"],
                             stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.setpgid(0, 0))
    out, _ = child.communicate(timeout=60)
    assert out.strip() == "True"
