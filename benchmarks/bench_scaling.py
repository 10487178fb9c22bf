"""Scaling with workers (issue 14): burn-down of a fixed backlog with 1, 2, 4 and 8 worker processes, each
analysis taking ``analysis.simulated_latency_ms=50`` ms more (I/O-like: a worker's slots wait, its CPU does not).

Run from the repository root::

    .venv/bin/python benchmarks/bench_scaling.py                  # 1, 2, 4, 8 workers, 2,400-ad backlog, ~2 min
    .venv/bin/python benchmarks/bench_scaling.py --quick          # smoke run: 1, 2 workers, 400 ads
    .venv/bin/python benchmarks/bench_scaling.py --workers 1,8 --backlog 4000 --output json
    # one worker, real analysis only, this tree's workers against an export of another revision, same run:
    git archive e6f552f | (mkdir -p /tmp/gamead-e6f552f && tar -x -C /tmp/gamead-e6f552f)
    .venv/bin/python benchmarks/bench_scaling.py --workers 1 --latency-ms 0 --backlog 5000 \
        --worker-code . --worker-code /tmp/gamead-e6f552f

For each worker count, a fresh stack as ``bench_sweep.py`` runs it (embedded ``nats-server``, one ``gamead
serve``, default settings) and N ``gamead worker`` processes at the default concurrency with
``GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS=50``. Once every worker has registered and a warm-up ad has
completed, the backlog is submitted as fast as the API takes it (``POST /ads/batch``, 100 ads each, 4
connections: faster than 8 workers drain it, so no worker waits for work), and completions are observed on the
ad-record KV bucket's subjects. **Burn-down, batched submits.**

Printed per worker count: ads/s over the middle of the burn-down (from the 10th to the 90th percentile of the
completion times, so start-up and the tail do not count), the time from the first submit to the last
completion, the ratio to linear (ads/s ÷ (N × the 1-worker ads/s); target for 8 workers ≥ 0.9), the ratio to
the ceiling the settings allow (N × concurrency ÷ 50 ms), the CPU ms per ad of the API, the workers together and
nats-server, and the whole machine's busy cores (a shared 2-core box: when it is busy, more workers cannot
help). After each drain, the autoscaler's per-worker rate (``/v1/stats`` ``perWorkerPerSec``, with
the bound that gave it) and the workers' heartbeat ``cpuPerAdMs``, beside the measured ads/s per worker: an
honest estimate is at or below what a worker measurably did when the CPU bounds it. Every process is stopped by PID at the end, also on Ctrl-C or failure.

``--latency-ms`` changes the simulated latency (0: the real analysis only, so the workers' CPU bounds the rate);
``--worker-code DIR`` (repeatable) runs the workers from another source tree (``PYTHONPATH``; the API and NATS
stay this tree's), each worker count once per tree, alternating, to compare revisions in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_common import (  # noqa: E402
    RunGuard, default_worker_concurrency, load_average, start_workers, wait_workers_registered,
)
from bench_pipeline import KvObserver, Procs, Stack, cpu_snapshot, log, percentile, use_uvloop  # noqa: E402

from gamead_cli.generate import generate_ads  # noqa: E402

LATENCY_MS = 50  # the issue's setting; --latency-ms changes it
TARGET_LINEAR = 0.9
BATCH = 100


async def flood(url: str, bodies: list[bytes], connections: int = 4) -> tuple[list[str], float]:
    """Submit every body via ``POST /ads/batch`` (``BATCH`` per request, ``connections`` at once); return the
    accepted ids and the ``time.time()`` of the first request."""
    import httpx  # noqa: PLC0415
    import orjson  # noqa: PLC0415

    chunks = [bodies[k:k + BATCH] for k in range(0, len(bodies), BATCH)]
    ids: list[str] = []
    queue: asyncio.Queue[list[bytes]] = asyncio.Queue()
    for c in chunks:
        queue.put_nowait(c)
    first = time.time()

    async def sender(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            chunk = queue.get_nowait()
            r = await client.post("/ads/batch", content=b'{"ads":[' + b",".join(chunk) + b"]}")
            r.raise_for_status()
            ids.extend(item["id"] for item in orjson.loads(r.content)["results"] if "id" in item)

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await asyncio.gather(*(sender(client) for _ in range(connections)))
    return ids, first


async def burn_down(stack: Stack, backlog: int, drain: float) -> dict[str, Any]:
    import httpx  # noqa: PLC0415

    assert stack.nats is not None
    obs = KvObserver()
    await obs.start(stack.nats.url)
    try:
        bodies = [json.dumps(ad, separators=(",", ":")).encode() for ad in generate_ads(backlog + 8, seed=21)]
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
            warm = [(await client.post("/ads", content=b)).json()["id"] for b in bodies[backlog:]]
        await obs.wait_for(set(warm), 30)
        obs.done.clear()
        pids = stack.pids()
        before = cpu_snapshot(pids)
        t0 = time.monotonic()
        ids, first = await flood(stack.url, bodies[:backlog])
        await obs.wait_for(set(ids), drain)
        after = cpu_snapshot(pids)
        wall = time.monotonic() - t0
    finally:
        await obs.close()
    done = sorted(obs.done[i][0] for i in ids if i in obs.done)
    n = len(done)
    out: dict[str, Any] = {"accepted": len(ids), "completed": n, "missing": len(ids) - n}
    if n >= 10:
        t10, t90 = percentile(done, 10), percentile(done, 90)
        assert t10 is not None and t90 is not None
        middle = sum(1 for t in done if t10 < t <= t90)
        out["ads_per_s"] = round(middle / (t90 - t10), 1) if t90 > t10 else None
        out["burn_down_s"] = round(done[-1] - first, 2)
    cpu = {k: (after[k] or 0.0) - (before[k] or 0.0) for k in before if before[k] is not None and after.get(k)}
    per_ad = {"api": cpu.get("api", 0.0), "workers": sum(v for k, v in cpu.items() if k.startswith("worker")),
              "nats": cpu.get("nats", 0.0)}
    out["cpu_ms_per_ad"] = {k: round(v / max(1, n) * 1000, 3) for k, v in per_ad.items()}
    out["machine_busy_cores"] = round(cpu.get("machine", 0.0) / wall, 2)
    out["load_average"] = load_average()
    out.update(await capacity_estimate(stack.url, n))
    return out


async def capacity_estimate(url: str, completed: int, timeout: float = 6.0) -> dict[str, Any]:
    """What the autoscaler would take one worker to do, read once the workers' heartbeats count the backlog:
    ``/v1/stats`` ``rates.perWorkerPerSec`` and its bound, and the workers' mean heartbeat ``cpuPerAdMs``."""
    import httpx  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while True:
            nodes = [n for n in (await client.get("/v1/workers")).json()["items"] if n.get("role") == "worker"]
            if sum(n.get("processed") or 0 for n in nodes) >= completed or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.5)  # one more sample of the API's sampler (every second) after those heartbeats
        rates = (await client.get("/v1/stats", params={"history": 0})).json()["rates"]
    cpus = [n["cpuPerAdMs"] for n in nodes if n.get("cpuPerAdMs")]
    return {"estimate_per_worker": rates.get("perWorkerPerSec"),
            "estimate_bound": (rates.get("perWorkerBasis") or {}).get("bound"),
            "latency_bound_per_worker": (rates.get("perWorkerBasis") or {}).get("latencyBoundPerSec"),
            "worker_cpu_ms_per_ad_heartbeat": round(statistics.mean(cpus), 3) if cpus else None}


def one_count(procs: Procs, tmp: Path, workers: int, a: argparse.Namespace, concurrency: int,
              code: str | None) -> dict[str, Any]:
    stack = Stack(procs, tmp, f"scale{workers}-{len(list(tmp.iterdir()))}").start()
    extra = {"PYTHONPATH": str(Path(code).resolve())} if code else {}
    try:
        start_workers(procs, stack, workers, GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS=str(a.latency_ms), **extra)
        wait_workers_registered(stack, workers)
        use_uvloop()
        row = asyncio.run(burn_down(stack, a.backlog, a.drain))
    finally:
        stack.stop()
    row["workers"] = workers
    row["code"] = code or "."
    row["ceiling_ads_per_s"] = workers * concurrency * 1000 / a.latency_ms if a.latency_ms else None
    return row


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 1 and 2 workers, 400-ad backlog")
    p.add_argument("--workers", help="comma-separated worker counts (default 1,2,4,8)")
    p.add_argument("--backlog", type=int, help="ads in the backlog (default 2400, quick 400)")
    p.add_argument("--latency-ms", type=int, default=LATENCY_MS,
                   help="analysis.simulated_latency_ms of the workers (50; 0 = the real analysis only)")
    p.add_argument("--worker-code", action="append", default=[],
                   help="run the workers from this source tree (repeatable: each worker count once per tree)")
    p.add_argument("--drain", type=float, default=120.0, help="longest wait for the backlog to complete (120 s)")
    p.add_argument("--output", choices=("table", "json"), default="table")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    a = p.parse_args(argv)
    counts = [int(x) for x in (a.workers or ("1,2" if a.quick else "1,2,4,8")).split(",")]
    a.backlog = a.backlog or (400 if a.quick else 2400)
    concurrency = default_worker_concurrency()
    tmp = Path(tempfile.mkdtemp(prefix="gamead-bench-scaling-"))
    (tmp / "logs").mkdir()
    procs = Procs(tmp / "logs")
    rows: list[dict[str, Any]] = []

    with RunGuard(procs, a, tmp / "logs") as run:
        for n in counts:
            for code in a.worker_code or [None]:
                log(f"{n} worker(s){f' from {code}' if code else ''}, concurrency {concurrency}, {a.latency_ms} ms "
                    f"simulated latency, backlog {a.backlog:,} (load average {load_average()})")
                row = one_count(procs, tmp, n, a, concurrency, code)
                rows.append(row)
            log(f"  {row.get('ads_per_s')} ads/s, burn-down {row.get('burn_down_s')} s, missing {row['missing']}")
    for r in rows:
        ones = [b["ads_per_s"] for b in rows if b["workers"] == 1 and b["code"] == r["code"] and b.get("ads_per_s")]
        base = statistics.median(ones) if ones else None  # several 1-worker rows (--workers 1,1): their median
        rate = r.get("ads_per_s")
        r["ratio_to_linear"] = round(rate / (r["workers"] * base), 3) if base and rate else None
        r["ratio_to_ceiling"] = round(rate / r["ceiling_ads_per_s"], 3) if rate and r["ceiling_ads_per_s"] else None
    result = {"what": "burn-down of a fixed backlog, batched submits (POST /ads/batch of 100), "
                      f"analysis.simulated_latency_ms={a.latency_ms}, worker.concurrency={concurrency}",
              "backlog": a.backlog, "cpus": os.cpu_count(), "rows": rows}
    last = rows[-1] if rows and len(a.worker_code) <= 1 else None
    if last and last["workers"] > 1 and last["ratio_to_linear"] is not None:
        result["verdict"] = {"workers": last["workers"], "ratio_to_linear": last["ratio_to_linear"],
                             "target": TARGET_LINEAR, "pass": last["ratio_to_linear"] >= TARGET_LINEAR}
    if a.output == "json":
        print(json.dumps(result, indent=2))
    elif rows:
        print(f"gamead scaling — {result['what']}; backlog {a.backlog:,} ads; {os.cpu_count()} cores (shared)")
        print(f"{'code':>20} {'workers':>7} {'ads/s':>8} {'ceiling':>8} {'×linear':>8} {'×ceiling':>9} "
              f"{'burn-down s':>12} "
              f"{'CPU ms/ad api / workers / nats':>31} {'busy cores':>10} {'load avg (1/5/15)':>20} "
              f"{'measured/worker':>15} {'estimate/worker':>24} {'c÷p50 alone':>11} {'hb CPU ms/ad':>12}")
        for r in rows:
            cpu = r["cpu_ms_per_ad"]

            def f(v: Any, fmt: str = ".1f") -> str:
                return "-" if v is None else format(v, fmt)
            print(f"{r['code'][-20:]:>20} {r['workers']:>7} {f(r.get('ads_per_s')):>8} "
                  f"{f(r['ceiling_ads_per_s'], '.0f'):>8} "
                  f"{f(r['ratio_to_linear'], '.2f'):>8} {f(r['ratio_to_ceiling'], '.2f'):>9} "
                  f"{f(r.get('burn_down_s')):>12} {cpu['api']:>9.2f} / {cpu['workers']:>6.2f} / {cpu['nats']:>6.2f}  "
                  f"{r['machine_busy_cores']:>10.2f} {r['load_average']:>20} "
                  f"{f(r['ads_per_s'] / r['workers'] if r.get('ads_per_s') else None):>15} "
                  f"{f(r.get('estimate_per_worker')) + ' (' + str(r.get('estimate_bound')) + ')':>24} "
                  f"{f(r.get('latency_bound_per_worker'), '.0f'):>11} "
                  f"{f(r.get('worker_cpu_ms_per_ad_heartbeat'), '.2f'):>12}"
                  + (f"  ({r['missing']} not completed)" if r["missing"] else ""))
        print("ads/s: completions between the 10th and 90th percentile of the completion times; ×linear: ads/s ÷ "
              "(workers × the 1-worker ads/s, same code); ceiling: workers × concurrency ÷ the simulated latency.")
        print("measured/worker: ads/s ÷ workers; estimate/worker: the autoscaler's per-worker rate after the drain "
              "(/v1/stats perWorkerPerSec) and its bound; c÷p50 alone: the "
              "rule before the CPU cap (concurrency ÷ p50); hb CPU ms/ad: the workers' heartbeat cpuPerAdMs (mean).")
        if "verdict" in result:
            v = result["verdict"]
            print(f"{v['workers']} workers: {v['ratio_to_linear']:.2f}× linear (target ≥ {TARGET_LINEAR}: "
                  f"{'PASS' if v['pass'] else 'MISS'})")
    return run.finish(tmp)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
