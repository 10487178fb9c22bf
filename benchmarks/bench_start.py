"""What a ``gamead serve`` and a ``gamead worker`` cost to start (start58): CPU-s and wall s from start to ready.

Run from the repository root::

    .venv/bin/python benchmarks/bench_start.py                          # 10 starts of each role, forked and fresh
    .venv/bin/python benchmarks/bench_start.py --code /tmp/old-tree     # the same tree beside another, alternating

One ``nats-server`` (JetStream, its own directory) for the whole run. Per source tree (this checkout, then each
``--code DIR``: ``PYTHONPATH``) one fork server as the tests start it (``DIR/tests/forkserver.py``: gamead imported
once, one forked child per start), and per round, alternating between the trees so the shared machine's load falls
on each alike:

* ``serve`` forked: from the fork to its first ``GET /readyz`` 200 (NATS connected, its streams checked: what the
  tests wait for before they use it);
* ``worker`` forked: from the fork to its ``worker started`` log line (its topology set up; it pulls next);
* with ``--fresh``, each also as a fresh interpreter (``python -m gamead_cli …``: its imports included).

The CPU is the child's own: it is SIGKILLed (by PID) once ready and its rusage read as it is reaped (µs, its
threads' too); with ``--stop`` it is stopped by SIGTERM instead (SIGKILL after 20 s), its CPU to ready read from
``/proc/PID/stat`` once ready (10 ms ticks) and its stop's CPU (the rest of its rusage) said too. The wall time is
from the request to the fork server (or ``Popen``) to ready. One child at a time. Printed: the median, min and max
over ``--rounds`` per role, mode and tree.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bench_pipeline import free_port, proc_cpu_seconds, scratch_dir  # noqa: E402

from gamead_core.embedded import EmbeddedNats  # noqa: E402


class Forker:
    """One tree's fork server (``tests/forkserver.py`` of that tree, run with its ``PYTHONPATH``)."""

    def __init__(self, code: Path, env: dict[str, str]) -> None:
        self.code = code
        self.env = env
        script = code / "tests" / "forkserver.py"
        self.popen = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        assert self.popen.stdout is not None and self.popen.stdin is not None
        ready = self.popen.stdout.readline()
        if not ready.startswith(b'{"ready"'):
            self.close()
            raise RuntimeError(f"the fork server of {code} did not start: {ready!r}")
        self._next = 0
        self.ended: dict[int, float] = {}  # pid → CPU-s it used in all, once it ended

    def fork(self, args: list[str], log: Path) -> int:
        """Fork ``gamead <args>`` with this tree's environment, output to ``log``; returns its pid."""
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self._next += 1
        request = {"id": self._next, "args": args, "env": self.env, "cwd": str(log.parent), "log": str(log)}
        self.popen.stdin.write(json.dumps(request).encode() + b"\n")
        self.popen.stdin.flush()
        while True:  # exit reports of earlier children come on the same stream
            message = self._message()
            if message.get("id") == self._next:
                return int(message["pid"])

    def _message(self) -> dict[str, Any]:
        assert self.popen.stdout is not None
        message: dict[str, Any] = json.loads(self.popen.stdout.readline())
        if "exit" in message:
            self.ended[int(message["exit"])] = float(message["cpu"])
        return message

    def wait(self, pid: int) -> float:
        """The CPU-s ``pid`` used in all, once the server has reaped it."""
        while pid not in self.ended:
            self._message()
        return self.ended.pop(pid)

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()  # its children get SIGTERM (PR_SET_PDEATHSIG)
            self.popen.wait()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stop(pid: int, forker: Forker | None, sig: int = signal.SIGTERM) -> float:
    """``sig`` to ``pid`` (SIGKILL after 20 s); the CPU-s it used in all (its rusage, reaped: µs, threads too)."""
    os.kill(pid, sig)
    deadline = time.monotonic() + 20
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    if forker is not None:
        return forker.wait(pid)
    _, _, usage = os.wait4(pid, 0)
    return usage.ru_utime + usage.ru_stime


def _ready(role: str, port: int, log: Path) -> bool:
    if role == "worker":
        return log.exists() and '"worker started"' in log.read_text(errors="replace")
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def one_start(role: str, tree: Path, forker: Forker | None, logdir: Path, k: int,
              stop: bool) -> tuple[float, float, float]:
    """Start ``role`` once (forked by ``forker``, else a fresh interpreter), end it once ready: (CPU-s to ready,
    wall s to ready, CPU-s of its stop). With ``stop`` it is stopped (SIGTERM), its CPU to ready read from /proc
    (10 ms ticks) and its stop's the rest; else SIGKILLed at once, its CPU to ready its whole rusage (µs), stop 0."""
    port = free_port()
    # a worker id of its own each start: a killed worker's registry claim lapses only seconds later
    args = ["serve", "--port", str(port)] if role == "serve" else ["worker", "--id", f"bench-{port}"]
    log = logdir / f"{role}-{port}.log"
    began = time.monotonic()
    if forker is not None:
        pid = forker.fork(args, log)
    else:
        with open(log, "ab") as out:
            popen = subprocess.Popen([sys.executable, "-m", "gamead_cli", *args], stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=forker_env(tree), cwd=logdir,
                                     start_new_session=True)
        pid = popen.pid
    cpu = None
    try:
        deadline = began + 60
        while not _ready(role, port, log):
            if not _alive(pid) or time.monotonic() > deadline:
                raise RuntimeError(f"{role} of {tree} did not start:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.01)
        wall = time.monotonic() - began
        cpu = proc_cpu_seconds(pid) if stop else 0.0
    finally:
        total = _stop(pid, forker, signal.SIGTERM if stop else signal.SIGKILL)
    assert cpu is not None
    return (cpu, wall, total - cpu) if stop else (total, wall, 0.0)


NATS_URL = ""


def forker_env(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMEAD_")}
    env.update(PYTHONPATH=str(tree), GAMEAD_NATS__URL=NATS_URL)
    return env


def run(args: argparse.Namespace) -> dict[str, Any]:
    global NATS_URL
    trees = [ROOT, *(Path(c).resolve() for c in args.code)]
    tmp = scratch_dir("bench-start-")
    nats = EmbeddedNats(tmp / "nats", pick_port=free_port).start()
    NATS_URL = nats.url
    forkers: list[Forker] = []
    results: dict[str, list[tuple[float, float, float]]] = {}
    try:
        forkers = [Forker(tree, forker_env(tree)) for tree in trees]
        modes = ["forked", *(["fresh"] if args.fresh else [])]
        for k in range(args.rounds + 1):  # round 0 warms the page cache, the streams and the fork servers up
            for role in args.roles:
                for mode in modes:
                    for tree, forker in zip(trees, forkers, strict=True):
                        figure = one_start(role, tree, forker if mode == "forked" else None, tmp, k, args.stop)
                        if k:
                            results.setdefault(f"{role} {mode} {tree}", []).append(figure)
    finally:
        for forker in forkers:
            forker.close()
        nats.stop()
    return {name: {"cpu_median": statistics.median(c for c, _, _ in xs), "cpu_min": min(c for c, _, _ in xs),
                   "cpu_max": max(c for c, _, _ in xs), "wall_median": statistics.median(w for _, w, _ in xs),
                   "stop_cpu_median": statistics.median(s for _, _, s in xs), "n": len(xs)}
            for name, xs in results.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=10, help="starts of each role per tree (10); figures are medians")
    p.add_argument("--code", action="append", default=[], metavar="DIR", help="another source tree beside this one")
    p.add_argument("--roles", nargs="+", default=["serve", "worker"], choices=["serve", "worker"])
    p.add_argument("--fresh", action="store_true", help="also start each as a fresh interpreter")
    p.add_argument("--stop", action="store_true",
                   help="stop each (SIGTERM) and measure its stop too; CPU to ready then in 10 ms ticks")
    p.add_argument("--output", choices=["table", "json"], default="table")
    args = p.parse_args(argv)
    result = run(args)
    if args.output == "json":
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'start':<50} {'CPU-s median':>12} {'min':>6} {'max':>6} {'wall s':>7} {'stop CPU-s':>10} {'n':>3}")
    for name, r in result.items():
        print(f"{name:<50} {r['cpu_median']:>12.3f} {r['cpu_min']:>6.2f} {r['cpu_max']:>6.2f} "
              f"{r['wall_median']:>7.2f} {r['stop_cpu_median']:>10.3f} {r['n']:>3}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
