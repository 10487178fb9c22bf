"""newcomer47: ``python benchmarks/bench_common.py --help`` and ``cpu_profile.py --help`` printed nothing, exit 0,
so a newcomer could not tell a library from a benchmark that did nothing. Each now prints what it is and which
scripts to run instead; ``--help`` exits 0, any other argument 2 (argparse's usage code)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.parametrize(("name", "pointer"), [("bench_common.py", "Run one of the bench_*.py scripts"),
                                               ("cpu_profile.py", "sweep_profile.py and bench_worker_drain.py")])
def test_a_library_says_what_it_is_and_what_to_run(name: str, pointer: str) -> None:
    helped = subprocess.run([sys.executable, str(_BENCH / name), "--help"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert helped.returncode == 0 and pointer in helped.stdout and "Not a benchmark" in helped.stdout
    wrong = subprocess.run([sys.executable, str(_BENCH / name), "--rates", "1000"], capture_output=True, text=True,
                           timeout=60, check=False)
    assert wrong.returncode == 2


# pytest made unimportable, as in the venv `make up` makes (no test extras); the script then run as `python FILE`.
_WITHOUT_PYTEST = ("import runpy, sys; sys.modules['pytest'] = None; script = sys.argv[1]; sys.argv = sys.argv[1:]; "
                   "sys.path.insert(0, script.rsplit('/', 1)[0]); runpy.run_path(script, run_name='__main__')")


@pytest.mark.parametrize(("name", "args"), [("bench_aging.py", ["--help"]), ("bench_analyzer.py", ["--help"]),
                                            ("bench_dlq_jobs.py", ["--help"]), ("bench_head_read.py", ["--help"]),
                                            ("bench_peers.py", ["--help"]), ("bench_atomic.py", ["--cluster"]),
                                            ("bench_level_depth.py", ["--rounds", "1"])])
def test_a_benchmark_needing_the_test_install_says_so_in_one_line(name: str, args: list[str]) -> None:
    """newcomer56: from `make up`'s venv, `python benchmarks/bench_aging.py --help` (and four others, and
    `bench_atomic.py --cluster`) ended in a traceback, `ModuleNotFoundError: No module named 'pytest'`, exit 1."""
    ran = subprocess.run([sys.executable, "-c", _WITHOUT_PYTEST, str(_BENCH / name), *args], capture_output=True,
                         text=True, timeout=120, check=False)
    assert ran.returncode == 2, ran.stderr
    assert "Traceback" not in ran.stderr and len(ran.stderr.splitlines()) == 1, ran.stderr
    assert f"error: {name}" in ran.stderr and "make .venv/.installed-test" in ran.stderr
