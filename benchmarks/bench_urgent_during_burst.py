"""Urgent ads during a bulk submit: how long one P1 ``POST /ads`` waits while ``gamead submit --count`` sends a burst.

Run from the repository root::

    .venv/bin/python benchmarks/bench_urgent_during_burst.py                  # 3 rounds, ~1-2 minutes
    .venv/bin/python benchmarks/bench_urgent_during_burst.py --rounds 1 --count 2000   # smoke run
    .venv/bin/python benchmarks/bench_urgent_during_burst.py --code /tmp/head   # also an API from another tree

Each round starts a fresh stack per source tree (embedded ``nats-server``, one ``gamead serve``, ``--workers``
workers of ``--concurrency`` slots, as ``bench_pipeline.py`` does) and runs ``--bursts`` bursts (2) on it: during
each, one P1 ad every 50 ms and 20 P5 ads/s (single ``POST /ads`` on keep-alive connections of their own) while
``gamead submit --count N --priority 5`` (``--count``, 6,000; batches of 100, its default 16 requests in flight)
sends its burst. Printed per burst: the P1 ``POST /ads`` latency p50/p95/max (client-side, ms) and the P1
submit→start (the record's ``startedAt`` − ``submittedAt``, server clock) p50/p95/max. The first burst after a
start is reported apart from the second; it starts once every worker has registered (``--cold``: at once, while
the workers are still starting). ``--code DIR`` (repeatable, an export such as ``git archive HEAD | tar -x -C
DIR``) runs the API of another tree in the same round, in turn, so the trees are compared under the same load;
compare ratios within one run, the machine is shared. Every process started is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_batch import CodeStack  # noqa: E402
from bench_common import wait_workers_registered  # noqa: E402
from bench_pipeline import (  # noqa: E402
    Procs,
    gamead_env,
    http_request_bytes,
    read_response,
    scratch_dir,
)

from gamead_cli.generate import generate_ads  # noqa: E402


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values`` by nearest rank; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def trickle(port: int, stop: threading.Event, p1_every: float, p5_rate: float) -> dict[str, Any]:
    """POST one P1 ad every ``p1_every`` s and ``p5_rate`` P5 ads/s until ``stop``; the P1 latencies (ms) and ids."""
    ads = list(generate_ads(200, seed=7))
    lat: list[float] = []
    ids: list[str] = []
    errors = 0

    async def loop(priority: int, every: float, keep: bool) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        k = 0
        next_at = time.perf_counter()
        while not stop.is_set():
            body = json.dumps({**ads[k % len(ads)], "priority": priority}).encode()
            k += 1
            t0 = time.perf_counter()
            writer.write(http_request_bytes("127.0.0.1", port, body))
            status, answer = await read_response(reader)
            if status != 202:
                errors += 1
            elif keep:
                lat.append((time.perf_counter() - t0) * 1000)
                ids.append(json.loads(answer)["id"])
            next_at += every
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        writer.close()

    await asyncio.gather(loop(1, p1_every, True), loop(5, 1 / p5_rate, False))
    return {"lat": lat, "ids": ids, "errors": errors}


def started_delays(port: int, ids: list[str], timeout: float = 120.0) -> list[float]:
    """submit→start (ms) of each ad of ``ids``, from its record, waiting up to ``timeout`` s for it to start."""
    import httpx  # noqa: PLC0415

    out: list[float] = []
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for ad_id in ids:
            while time.monotonic() < deadline:
                rec = client.get(f"/ads/{ad_id}").json()
                started = rec.get("startedAt")
                if started:
                    t0 = datetime.fromisoformat(rec["submittedAt"].replace("Z", "+00:00"))
                    t1 = datetime.fromisoformat(started.replace("Z", "+00:00"))
                    out.append((t1 - t0).total_seconds() * 1000)
                    break
                time.sleep(0.05)
    return out


def burst(procs: Procs, stack: CodeStack, count: int) -> dict[str, Any]:
    """One burst of ``count`` P5 ads by ``gamead submit`` under the P1/P5 trickle; its figures."""
    assert stack.nats is not None
    stop = threading.Event()
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(asyncio.run(trickle(stack.port, stop, 0.05, 20.0))))
    thread.start()
    time.sleep(0.3)  # the trickle runs before the burst starts
    sub = procs.start("submit", [sys.executable, "-m", "gamead_cli", "submit", "--count", str(count),
                                 "--priority", "5", "--api", stack.url, "-o", "json"],
                      gamead_env(stack.nats.url), stdout=subprocess.PIPE)
    out, _ = sub.communicate(timeout=600)
    procs.items = [(n, p) for n, p in procs.items if p is not sub]
    stop.set()
    thread.join()
    accepted = json.loads(out).get("accepted") if out.strip() else None
    starts = started_delays(stack.port, box["ids"])
    lat = box["lat"]
    return {"p1Posts": len(lat), "burstAccepted": accepted, "errors": box["errors"],
            "postP50": pct(lat, 0.5), "postP95": pct(lat, 0.95), "postMax": max(lat, default=float("nan")),
            "startP50": pct(starts, 0.5), "startP95": pct(starts, 0.95), "startMax": max(starts, default=float("nan"))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--bursts", type=int, default=2, help="bursts per fresh stack (2: the first and a second)")
    p.add_argument("--count", type=int, default=6000, help="P5 ads per burst (gamead submit --count)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=4, help="slots per worker")
    p.add_argument("--cold", action="store_true",
                   help="start the first burst at once, before the workers have registered (as right after a start)")
    p.add_argument("--code", action="append", default=[], metavar="DIR", help="also an API from this tree")
    p.add_argument("--output", choices=("text", "json"), default="text")
    args = p.parse_args()
    root = scratch_dir("gamead-bench-urgent-")
    (root / "logs").mkdir()
    procs = Procs(root / "logs")
    trees: list[str | None] = [None, *args.code]
    results: dict[str, list[list[dict[str, Any]]]] = {t or "this tree": [] for t in trees}
    try:
        for r in range(args.rounds):
            for k, tree in enumerate(trees):
                stack = CodeStack(procs, root, f"r{r}t{k}", tree).start()
                stack.start_workers(args.workers, args.concurrency)
                if not args.cold:
                    wait_workers_registered(stack, args.workers)
                row = []
                for b in range(args.bursts):
                    fig = burst(procs, stack, args.count)
                    row.append(fig)
                    if args.output == "text":
                        print(f"round {r + 1} [{tree or 'this tree'}] burst {b + 1}: P1 POST /ads p50 "
                              f"{fig['postP50']:5.0f} p95 {fig['postP95']:5.0f} max {fig['postMax']:5.0f} ms | "
                              f"submit→start p50 {fig['startP50']:5.0f} p95 {fig['startP95']:5.0f} max "
                              f"{fig['startMax']:5.0f} ms | {fig['p1Posts']} P1, burst accepted "
                              f"{fig['burstAccepted']}, {fig['errors']} errors | load "
                              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
                results[tree or "this tree"].append(row)
                for w in stack.workers:
                    procs.stop(w)
                assert stack.api is not None and stack.nats is not None
                procs.stop(stack.api)
                procs.stop(stack.nats.proc)
    finally:
        procs.stop_all()
    if args.output == "json":
        print(json.dumps(results, indent=2))
        return 0
    for tree, rows in results.items():
        for b in range(args.bursts):
            figs = [row[b] for row in rows]
            print(f"[{tree}] burst {b + 1}, median of {len(figs)} rounds: P1 POST p95 "
                  f"{statistics.median(f['postP95'] for f in figs):.0f} ms (max "
                  f"{max(f['postMax'] for f in figs):.0f}), submit→start p95 "
                  f"{statistics.median(f['startP95'] for f in figs):.0f} ms (max "
                  f"{max(f['startMax'] for f in figs):.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
