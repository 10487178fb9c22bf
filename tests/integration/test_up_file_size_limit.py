"""``gamead up`` under a file-size limit (``ulimit -f``, RLIMIT_FSIZE): attack43a F1.

Under ``ulimit -f 4096`` (4 MiB) a stack took ~1,300 ads, then the ad bucket's first store block reached the limit:
nats-server logged ``file too large`` for every write, every submit was refused (503) for good, and the console,
``/readyz`` and ``gamead doctor`` said to free space on a disk with gigabytes free. Now ``up`` raises the soft limit
to the hard one (its children inherit it) and says a limit it cannot raise at its start."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import up_stack

#: what gamead up says at its start under a file-size limit it cannot raise
CAPPED = "(RLIMIT_FSIZE, ulimit -f; its hard limit, so it cannot be raised here)"
LIMIT = 8 * 1024 * 1024

pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux prlimit")


def max_file_size(pid: int) -> str:
    """The soft ``Max file size`` of process ``pid`` as ``/proc/PID/limits`` gives it (``unlimited`` or bytes)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max file size"):
            return line.split()[3]
    raise AssertionError(f"no Max file size in /proc/{pid}/limits")


def start_limited(tmp_path: Path, soft: int, hard: int | str):
    """A ``gamead up --workers 0`` started under ``prlimit --fsize=soft:hard`` (prlimit execs it: same PID)."""
    up = up_stack(tmp_path, "--workers", "0", "--no-autoscale", GAMEAD_LOG__LEVEL="WARNING")
    up.argv[:0] = ["prlimit", f"--fsize={soft}:{hard}", "--"]
    return up.start()


@pytest.mark.timeout(300)
def test_a_soft_file_size_limit_is_raised_for_nats_server(tmp_path: Path) -> None:
    """A soft-only limit (``ulimit -S -f``) no longer reaches nats-server: its store files may grow past it. With the
    fix its /proc limits say ``unlimited`` and nothing is said; without it (up.py of cc07fac7) ``8388608``:
    failed."""
    up = start_limited(tmp_path, LIMIT, "unlimited")
    try:
        output = up.wait_ready()
        nats = next(entry for entry in up.started() if entry["name"] == "nats-server")
        assert max_file_size(int(nats["pid"])) == "unlimited", output  # type: ignore[call-overload]
        assert CAPPED not in output, output
    finally:
        up.kill_everything()


@pytest.mark.timeout(300)
def test_a_hard_file_size_limit_is_said_at_the_start(tmp_path: Path) -> None:
    """A limit ``up`` cannot raise (``ulimit -f N`` sets the hard one too) is said once at its start, naming its
    size, the store it caps and how to lift it; the stack starts all the same. With the fix: the line, once;
    without it (up.py of cc07fac7): no such line, failed."""
    up = start_limited(tmp_path, LIMIT, LIMIT)
    try:
        output = up.wait_ready()
        line = next((ln for ln in output.splitlines() if CAPPED in ln), None)
        assert line is not None, output
        assert "a file-size limit of 8.0 MiB" in line and str(up.data_dir / "jetstream") in line, line
        assert "'file too large'" in line and "ulimit -f unlimited" in line and output.count(CAPPED) == 1, line
    finally:
        up.kill_everything()
