"""Measure the dashboard's own CPU: ``gamead top`` at one refresh a second against a stack with 8 workers.

Run from the repository root (about a minute)::

    .venv/bin/python benchmarks/bench_top_cpu.py
    .venv/bin/python benchmarks/bench_top_cpu.py --workers 8 --refresh 1 --seconds 30 --rate 50 --output json

What runs: ``gamead up --workers 8 --no-autoscale`` (embedded NATS, one API, 8 worker processes) on a free
port with its own data dir, and ``gamead submit --count … --rate …`` in a process of its own, so the numbers
on screen move every refresh. In this process only: the real :class:`~gamead_cli.tui.app.DashboardApp` over
:class:`~gamead_cli.tui.source.ApiSource`, driven by Textual's headless driver at 120×40 (every refresh is
fetched, diffed and composited as on a terminal; only the final write to a tty is skipped). After a warm-up
of ``--warmup`` seconds, the figure is this process's CPU time (user + system, all threads:
``time.process_time``) over ``--seconds`` of wall time, as a percentage of one core, with the refreshes done.

``--record`` also records the session as ``gamead top --record`` does and reports the bytes per snapshot
(and so how many hours the default cap holds); its CPU is then part of the figure.

Every process it starts is stopped by PID at the end (SIGTERM to its process group, SIGKILL after 10 s),
also on Ctrl-C or failure. The target (issue 15): under 5 % of a core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from gamead_cli.client import ApiClient  # noqa: E402
from gamead_cli.tui.app import DashboardApp  # noqa: E402
from gamead_cli.tui.recording import DEFAULT_MAX_MB, Recorder  # noqa: E402
from gamead_cli.tui.source import ApiSource  # noqa: E402

GAMEAD = [str(Path(sys.executable).parent / "gamead")]  # the console script of this venv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group we created, SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def wait_workers(url: str, workers: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            items = httpx.get(f"{url}/v1/workers", timeout=2).json().get("items", [])
            if sum(1 for n in items if n.get("role") == "worker") >= workers:
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"the stack at {url} did not show {workers} workers within {timeout:.0f} s")


async def measure(url: str, refresh: float, warmup: float, seconds: float,
                  record: Path | None = None) -> dict[str, float]:
    recorder = Recorder(record) if record is not None else None
    app = DashboardApp(ApiSource(ApiClient(url, timeout=2.0)), refresh=refresh, recorder=recorder)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(warmup)
        ticks0, cpu0, wall0 = app._ticks, time.process_time(), time.monotonic()
        await pilot.pause(seconds)
        cpu, wall, ticks = time.process_time() - cpu0, time.monotonic() - wall0, app._ticks - ticks0
        errors = app.failures
    extra: dict[str, float] = {}
    if recorder is not None:
        recorder.close()
        per = recorder.written / max(1, recorder.frames)
        extra = {"recorded_snapshots": recorder.frames, "recorded_bytes": recorder.written,
                 "recorded_bytes_per_snapshot": per,
                 "hours_in_default_cap_at_this_refresh": DEFAULT_MAX_MB * 1024 * 1024 / per * refresh / 3600}
    return {**extra, "cpu_seconds": cpu, "wall_seconds": wall, "cpu_percent_of_a_core": 100 * cpu / wall,
            "refreshes": ticks, "cpu_ms_per_refresh": 1000 * cpu / max(1, ticks), "failures_at_end": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--refresh", type=float, default=1.0, help="dashboard refresh, seconds")
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=30.0, help="measured wall time")
    ap.add_argument("--rate", type=float, default=50.0, help="ads submitted per second during the run")
    ap.add_argument("--record", action="store_true",
                    help="also record the session (as gamead top --record) and report its bytes per snapshot")
    ap.add_argument("--output", choices=("table", "json"), default="table")
    args = ap.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "GAMEAD_LOG__LEVEL": "WARNING"}
        try:
            log = open(Path(tmp) / "up.log", "wb")  # noqa: SIM115 - closed with the temp dir
            procs.append(subprocess.Popen(
                [*GAMEAD, "up", "--workers", str(args.workers), "--no-autoscale", "--port", str(port),
                 "--data-dir", str(Path(tmp) / "data")],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=tmp))
            wait_workers(url, args.workers)
            total = int(args.rate * (args.warmup + args.seconds + 30))
            procs.append(subprocess.Popen(
                [*GAMEAD, "submit", "--count", str(total), "--rate", str(args.rate), "--api", url, "--quiet"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True, cwd=tmp))
            result = asyncio.run(measure(url, args.refresh, args.warmup, args.seconds,
                                         Path(tmp) / "session.jsonl" if args.record else None))
        finally:
            for proc in reversed(procs):
                stop(proc)
    result.update(workers=args.workers, refresh=args.refresh, rate=args.rate)
    if args.output == "json":
        print(json.dumps(result, indent=2))
        return
    print(f"gamead top, {args.workers} workers, refresh {args.refresh:g} s, {args.rate:g} ads/s submitted, "
          f"{result['wall_seconds']:.0f} s measured after {args.warmup:g} s warm-up")
    print(f"  dashboard CPU: {result['cpu_percent_of_a_core']:.1f} % of one core "
          f"({result['cpu_seconds']:.2f} s CPU over {result['wall_seconds']:.1f} s)   target < 5 %")
    print(f"  refreshes: {result['refreshes']:.0f}, {result['cpu_ms_per_refresh']:.1f} ms CPU each; "
          f"failed refreshes at the end: {result['failures_at_end']:.0f}")
    if args.record:
        print(f"  --record: {result['recorded_snapshots']:.0f} snapshots, "
              f"{result['recorded_bytes_per_snapshot']:,.0f} bytes each on average (the first holds the whole "
              f"history); the default {DEFAULT_MAX_MB} MB cap holds "
              f"{result['hours_in_default_cap_at_this_refresh']:.1f} h at this refresh")


if __name__ == "__main__":
    main()
