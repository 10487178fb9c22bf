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
