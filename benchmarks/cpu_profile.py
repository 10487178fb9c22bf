"""CPU-time profiles of a benchmark's child process (speed40): :func:`sampler_env` starts the child with the
sampler of ``benchmarks/cpu_profile_site/sitecustomize.py``, :func:`toggle` opens and closes its window
(``SIGUSR2``), :func:`summary` reads what it wrote: shares of CPU samples by the task an event loop ran, by function
(own time) and by function with its callees (cumulative)."""

from __future__ import annotations

import collections
import os
import re
import signal
import sys
from pathlib import Path

SITE = Path(__file__).resolve().parent / "cpu_profile_site"


def sampler_env(path: str, code: str | None = None) -> dict[str, str]:
    """Environment entries that start a Python child with the sampler writing to ``path`` (``code``: a source tree
    to put on ``PYTHONPATH`` after it, as ``--code`` does). Not a ``GAMEAD_`` name: gamead refuses settings it does
    not know (exit 5)."""
    return {"BENCH_CPU_PROFILE": path, "PYTHONPATH": str(SITE) + (os.pathsep + code if code else "")}


def toggle(pid: int) -> None:
    """Start (first call) or stop (second) sampling in the child ``pid``."""
    os.kill(pid, signal.SIGUSR2)


def _function(frame: str) -> str:
    return re.sub(r" \(.*", "", frame)


def summary(path: str, top: int = 25) -> str:
    """The profile at ``path`` (collapsed stacks) as text: sample count, then the top ``top`` tasks (the frame the
    event loop's ``Runner.run`` called), functions by own samples and functions by cumulative samples, in % of all.
    Shares only: CPython runs a signal's handler at its next check, and signals that come before it are one
    (a uvloop worker kept ~10 % of the 0.5 ms ticks of its CPU)."""
    own: collections.Counter[str] = collections.Counter()
    cumulative: collections.Counter[str] = collections.Counter()
    tasks: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        n, frames = int(count), [_function(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            cumulative[name] += n
        i = frames.index("Runner.run") if "Runner.run" in frames else -1
        task = frames[i + 1] if 0 <= i < len(frames) - 1 else "(the event loop)"
        tasks[task + (f" > {frames[i + 2]}" if task == "Worker.run" and i + 2 < len(frames) else "")] += n
    if not total:
        return f"{path}: no samples"
    out = [f"{total} CPU samples (0.5 ms of the process's CPU each)", "by task:"]
    out += [f"  {100 * n / total:5.1f} %  {name}" for name, n in tasks.most_common(top // 2)]
    out.append("by function, own time:")
    out += [f"  {100 * n / total:5.1f} %  {name}" for name, n in own.most_common(top)]
    out.append("by function, with its callees:")
    out += [f"  {100 * n / total:5.1f} %  {name}" for name, n in cumulative.most_common(top * 4)
            if n < 0.99 * total][:top * 2]  # not the frames under (nearly) every sample: the CLI, the event loop
    return "\n".join(out)


if __name__ == "__main__":  # newcomer47: run by hand, it printed nothing
    print(f"{__doc__.strip()}\n\nNot a benchmark: sweep_profile.py and bench_worker_drain.py use it.")
    sys.exit(0 if sys.argv[1:] in ([], ["--help"], ["-h"]) else 2)
