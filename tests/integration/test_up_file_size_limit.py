"""``gamead up`` under a file-size limit (``ulimit -f``, RLIMIT_FSIZE): attack43a F1.

Under ``ulimit -f 4096`` (4 MiB) a stack took ~1,300 ads, then the ad bucket's first store block reached the limit:
nats-server logged ``file too large`` for every write, every submit was refused (503) for good, and the console,
``/readyz`` and ``gamead doctor`` said to free space on a disk with gigabytes free. Now ``up`` raises the soft limit
to the hard one (its children inherit it) and says a limit it cannot raise at its start; and once a store file
reaches a hard one, the unready line and ``gamead doctor`` name the limit, not the disk."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.integration.test_up_disk_full import FAST, submit_until_refused
from tests.support import doctor_report, up_stack, wait_for

#: what gamead up says at its start under a file-size limit it cannot raise
CAPPED = "(RLIMIT_FSIZE, ulimit -f; its hard limit, so it cannot be raised here)"
LIMIT = 8 * 1024 * 1024
#: a hard limit a store file reaches after ~100 ads (a stream block grows to a few MiB)
SMALL = 64 * 1024
#: what gamead up says of its API unready past registry.ttl
UNREADY = "has answered /readyz 503 (unready)"

pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux prlimit")


def max_file_size(pid: int) -> str:
    """The soft ``Max file size`` of process ``pid`` as ``/proc/PID/limits`` gives it (``unlimited`` or bytes)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max file size"):
            return line.split()[3]
    raise AssertionError(f"no Max file size in /proc/{pid}/limits")


def start_limited(tmp_path: Path, soft: int, hard: int | str, **env: str):
    """A ``gamead up --workers 0`` started under ``prlimit --fsize=soft:hard`` (prlimit execs it: same PID), with
    ``env`` added to its environment."""
    up = up_stack(tmp_path, "--workers", "0", "--no-autoscale", **{"GAMEAD_LOG__LEVEL": "WARNING", **env})
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


@pytest.mark.timeout(300)
def test_a_store_at_a_hard_file_size_limit_is_said_as_the_limit_not_the_disk(tmp_path: Path) -> None:
    """attack43a F1, left: under a hard 64 KiB limit a store file reaches it, nats-server logs ``file too large``
    for every write and every submit is refused; ``gamead up``'s unready line said "free space on the disk of
    nats-server's store …, then restart nats-server" (the disk had GBs free) and so did ``gamead doctor``'s
    ``store_unwritable``. Now the line names the log's ``file too large``, the limit's size (nats-server's
    /proc limits) and ``ulimit -f unlimited``, not the disk; doctor, which cannot read the log, names both causes.
    With the fix: passed (58 s, 39 s); without it (the six product files of 3852cae7): failed in 31 s, the line
    "… JetStream does not store writes: free space on the disk of nats-server's store …"."""
    (tmp_path / "config.yaml").write_text("registry: {ttl: 4, heartbeat_interval: 0.5}\n")
    up = start_limited(tmp_path, SMALL, SMALL, **FAST)
    try:
        up.wait_ready()
        with httpx.Client(base_url=up.url, timeout=20) as client:
            assert submit_until_refused(client, timeout=180), "some ads stored before the limit"
        wait_for(lambda: UNREADY in up.output(), timeout=60, what="the console to say the API is unready")
        line = next(ln for ln in up.output().splitlines() if UNREADY in ln)
        assert "says 'file too large': a file of its store" in line, line
        assert "file-size limit of 64.0 KiB" in line and "ulimit -f unlimited" in line, line
        assert "free space on the disk" not in line, line
        report = doctor_report(up.url)
        (finding,) = [f for f in report["findings"] if f["kind"] == "store_unwritable"]  # type: ignore[union-attr]
        detail = " ".join(finding["details"].values())  # type: ignore[index]
        assert "'file too large'" in detail and "ulimit -f unlimited" in detail, detail
    finally:
        up.kill_everything()
