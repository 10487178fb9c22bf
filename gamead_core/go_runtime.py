"""How many cores the embedded nats-server's Go runtime runs on at once (``GOMAXPROCS``; issue 14).

The embedded server (``gamead up``) shares its machine with the API and the workers, Python processes that
each keep a core busy under load. Given every core, Go's scheduler keeps threads sleeping and waking for work:
``perf`` on nats-server at a steady 800 ads/s on 2 cores found a quarter of its CPU in the kernel's
``finish_task_switch`` (on one core still 18 %, 11 % under Go's ``sysmon``). On half the cores its CPU per ad
was 16-20 % lower at 500-1,000 ads/s (medians of three alternating ``benchmarks/bench_sweep.py`` runs each;
README, "Session 20").
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

#: where the cgroup file systems are mounted (v2 unified, or v1 with a ``cpu`` hierarchy below)
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cores_of(quota: str, period: str) -> int | None:
    """Whole cores of a CFS ``quota`` per ``period`` (µs, as the files hold them), rounded up; None if none."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None  # "max": no limit
    return max(1, math.ceil(q / p)) if q > 0 and p > 0 else None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, own: Path = Path("/proc/self/cgroup")) -> int | None:
    """The CPU limit of this process's cgroup in whole cores (quota ÷ period, rounded up), or None where there
    is none or it cannot be read: cgroup v2, the smallest ``cpu.max`` from the process's own cgroup (``own``,
    ``0::/path``) up to ``root``; cgroup v1, ``cpu.cfs_quota_us`` ÷ ``cpu.cfs_period_us`` of its ``cpu``
    hierarchy. A container's ``--cpus``, as Go ≥ 1.25 reads it for its default."""
    try:
        lines = own.read_text().splitlines()
    except OSError:
        lines = []
    limits: list[int] = []
    for line in lines:
        ident, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if ident == "0" and not controllers:  # v2: walk up from our cgroup to the root
            here = root / path.lstrip("/")
            while True:
                try:
                    limit = _cores_of(*(here / "cpu.max").read_text().split()[:2])
                except (OSError, TypeError):
                    limit = None
                if limit is not None:
                    limits.append(limit)
                if here == root or root not in here.parents:
                    break
                here = here.parent
        elif "cpu" in controllers.split(","):  # v1
            for base in (root / controllers / path.lstrip("/"), root / controllers, root / "cpu"):
                try:
                    limit = _cores_of((base / "cpu.cfs_quota_us").read_text().strip(),
                                      (base / "cpu.cfs_period_us").read_text().strip())
                except OSError:
                    continue
                if limit is not None:
                    limits.append(limit)
                break
    return min(limits) if limits else None


def usable_cores() -> int:
    """The cores this process may use, ≥ 1: its CPU affinity (``os.cpu_count()`` where that cannot be read),
    at most its cgroup's CPU limit (:func:`cgroup_cpu_limit`)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    return max(1, min(cores, limit) if limit is not None else cores)


def go_max_procs(setting: int, environ: Mapping[str, str], cores: int) -> tuple[int, str]:
    """The ``GOMAXPROCS`` to start the embedded nats-server with, and where it comes from (for the console).

    ``setting`` (``embedded.gomaxprocs``) > 0 wins; at 0 a positive whole number in ``environ``'s
    ``GOMAXPROCS`` is the operator's and is kept (Go itself ignores any other value); else half of ``cores``
    (the usable cores, :func:`usable_cores`), at least 1 (module doc). Pure."""
    if setting > 0:
        return setting, "embedded.gomaxprocs"
    given = environ.get("GOMAXPROCS", "").strip()
    if given.isascii() and given.isdigit() and int(given) > 0:
        return int(given), "GOMAXPROCS in the environment"
    return max(1, cores // 2), f"half of {cores} usable core(s); embedded.gomaxprocs 0"
