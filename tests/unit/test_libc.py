"""gamead_core.libc: the C library's ``prctl`` and ``malloc_trim`` are found without running a program. Before,
``ctypes.util.find_library("c")`` ran ``ldconfig -p`` twice in every role's process at import of
:mod:`gamead_core.proc` and :mod:`gamead_core.collector` (2 programs run, 16 ms each on an idle machine); now 0."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import clean_env

IMPORTS = """
import sys
ran = []
sys.addaudithook(lambda event, args: ran.append(args[0]) if event == "subprocess.Popen" else None)
import gamead_core.collector, gamead_core.proc
print(len(ran), gamead_core.proc.pdeathsig_supported(), gamead_core.collector._TRIM is not None)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_importing_the_roles_libc_users_runs_no_program_and_finds_both_functions() -> None:
    out = subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, text=True, env=clean_env(),
                         timeout=60, check=True).stdout.split()
    assert out == ["0", "True", "True"], out  # before: ["2", "True", "True"]


def test_a_function_the_c_library_lacks_is_none() -> None:
    from gamead_core.libc import libc_function

    assert libc_function("no_such_function_in_any_libc") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ldconfig is Linux's")
def test_a_function_the_c_library_lacks_runs_no_program() -> None:
    """review42b F6: a function the C library lacks (``malloc_trim`` on musl) sent :func:`libc_function` on to
    ``find_library("c")``, which runs ``ldconfig``: the program left42 took out of every role's start, back on
    Alpine. Without the fix 1 program run (``/sbin/ldconfig``), with it 0."""
    script = ("import sys\nran = []\n"
              "sys.addaudithook(lambda event, args: ran.append(args[0]) if event == 'subprocess.Popen' else None)\n"
              "from gamead_core.libc import libc_function\n"
              "print(libc_function('no_such_function_in_any_libc'), len(ran))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=clean_env(),
                         timeout=60, check=True).stdout.split()
    assert out == ["None", "0"], out
