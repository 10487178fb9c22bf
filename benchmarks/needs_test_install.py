"""One line, not a traceback, when a benchmark that reuses the test suite's helpers runs without the test extras.

`make up` installs gamead without its test extras (no pytest). Six scripts import helpers from ``tests/``, which
import pytest: ``bench_aging.py``, ``bench_analyzer.py``, ``bench_dlq_jobs.py``, ``bench_head_read.py``,
``bench_peers.py`` and ``bench_atomic.py --cluster``. Run from that venv (even with ``--help``) they ended in
``ModuleNotFoundError: No module named 'pytest'`` and a traceback (newcomer56). Each now calls :func:`require`
before those imports.

Not a benchmark itself: run one of the bench_*.py scripts (benchmarks/README.md lists them).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def require(script: str, what: str = "") -> None:
    """Return when pytest (the test extras, ``make .venv/.installed-test``) is importable; else exit 2.

    ``script`` is the benchmark's ``__file__``; ``what`` the part of it that needs them (``" --cluster"``), if not
    the whole script. Raises ``SystemExit(2)`` (argparse's usage code) after one ``error:`` line on stderr naming
    the command that installs them and the one that then runs the script.
    """
    if importlib.util.find_spec("pytest") is not None:
        return
    name = Path(script).name
    sys.stderr.write(f"error: {name}{what} reuses the test suite's helpers (tests/), which need the test install "
                     f"(pytest); this venv has none (`make up` installs gamead without its test extras): run "
                     f"`make .venv/.installed-test`, then `.venv/bin/python benchmarks/{name}{what}`\n")
    raise SystemExit(2)


if __name__ == "__main__":
    print(__doc__.strip())
    sys.exit(0 if sys.argv[1:] in ([], ["--help"], ["-h"]) else 2)
