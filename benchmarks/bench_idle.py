"""Idle workers cost nothing (issue 14.1): NATS messages and CPU per ad with 1, 4 and 8 workers at a steady rate.

Run from the repository root::

    .venv/bin/python benchmarks/bench_idle.py                       # 1, 4, 8 workers, 200 ads/s, 8 s each
    .venv/bin/python benchmarks/bench_idle.py --code /tmp/main-src  # the same against another checkout

For each worker count: a fresh ``nats-server`` (with its monitoring port, for ``/varz``), one ``gamead serve``,
N ``gamead worker`` processes (default concurrency), 2 s of warm-up at the rate, then ``--duration`` s
measured while a paced generator (``bench_pipeline.py``'s, its own process) submits ``--rate`` ads/s
(``POST /ads``, one at a time, open loop). Steady
state, single submits, not burn-down. Printed per worker count, per accepted ad:

* messages through NATS (``in_msgs + out_msgs`` of ``/varz``: the API's publishes and acks, the workers'
  pulls, deliveries, acks, KV writes and every JetStream API call);
* CPU of nats-server, and of all workers together (µs);
* after the run, with every worker idle, submit→start latency of 5 urgent (priority 1) ads, one at a time
  (``startedAt − submittedAt`` of the record): how fast an idle worker picks up an arriving ad.

With ``--breakdown``, ``msg_tap.py`` (its own process, subscribed to ``>``) also counts every message routed
in the measured window by class (pull requests, deliveries, statuses, acks, KV writes, publish acks, API
calls, advisories…), each counted once, printed per ad.

Then the ratio 8 workers / 1 worker of messages and NATS CPU per ad (target ≤ 1.5×). Every process is
stopped by PID at the end. ``--code DIR`` runs the roles from another source tree (``PYTHONPATH``), to
compare with the code before this change in the same run.
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
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_pipeline import Procs, free_port, gamead_env, proc_cpu_seconds, scratch_dir  # noqa: E402

from gamead_cli.generate import generate_ads  # noqa: E402
from gamead_core.embedded import EmbeddedNats  # noqa: E402


def varz(port: int) -> dict[str, Any]:
    return httpx.get(f"http://127.0.0.1:{port}/varz", timeout=5).json()  # type: ignore[no-any-return]


def paced_child(port: int, rate: float, seconds: float, bodies: Path, out: Path) -> int:
    """``bench_pipeline.py``'s open-loop paced generator in its own process (64 connections, raw HTTP/1.1):
    holds 1,000 ads/s where the in-process httpx one cannot. Returns how many were accepted."""
    start_at = time.time() + 0.5
    gen = subprocess.Popen([sys.executable, str(Path(__file__).with_name("bench_pipeline.py")), "_paced",
                            "--port", str(port), "--bodies", str(bodies), "--connections", "64",
                            "--start-at", str(start_at), "--duration", str(seconds), "--rate", str(rate),
                            "--out", str(out)], start_new_session=True)
    try:
        gen.wait(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        gen.kill()
        gen.wait()
        return 0
    return sum(1 for r in json.loads(out.read_text())["records"] if r[4] == 202)


def wake_latency(url: str, samples: int = 5) -> list[float]:
    """Submit→start (ms) of urgent ads sent one at a time to idle workers."""
    out = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for i, ad in enumerate(generate_ads(samples, seed=99)):
            time.sleep(1.0)  # every worker idle again, its long polls (or subscription) waiting
            ad_id = client.post("/ads", json={**ad, "priority": 1}).json()["id"]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                rec = client.get(f"/ads/{ad_id}").json()
                if rec.get("startedAt"):
                    s = datetime.fromisoformat(rec["submittedAt"])
                    t = datetime.fromisoformat(rec["startedAt"])
                    out.append((t - s).total_seconds() * 1000)
                    break
                time.sleep(0.02)
            del i
    return out


def start_tap(nats_url: str, out: Path, script: str | None = None) -> subprocess.Popen[bytes]:
    """``msg_tap.py`` (or ``script``, which takes the same arguments) in its own process, subscribed to ``>``
    (returns once it is)."""
    script = script or str(Path(__file__).with_name("msg_tap.py"))
    tap = subprocess.Popen([sys.executable, script, nats_url, str(out)],
                           stdout=subprocess.PIPE, start_new_session=True)
    assert tap.stdout is not None
    if tap.stdout.readline().strip() != b"ready":
        tap.kill()
        raise RuntimeError("msg_tap.py did not start")
    return tap


def stop_tap(tap: subprocess.Popen[bytes], out: Path) -> dict[str, int]:
    tap.send_signal(signal.SIGTERM)
    try:
        tap.wait(timeout=30)
    except subprocess.TimeoutExpired:
        tap.kill()
        tap.wait()
        return {}
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def one_run(root: Path, workers: int, rate: float, duration: float, code: str | None,
            breakdown: bool = False) -> dict[str, Any]:
    procs = Procs(root / "logs")
    run_dir = root / f"w{workers}"
    nats_server = EmbeddedNats(run_dir / "nats", pick_port=free_port)
    tap: subprocess.Popen[bytes] | None = None
    argv = nats_server.prepare()
    monitor = free_port()
    try:
        nproc = procs.start(f"w{workers}-nats", [*argv, "-m", str(monitor)])
        nats_server.wait_ready(nproc)
        extra = {"PYTHONPATH": code} if code else {}
        api_port = free_port()
        env = gamead_env(nats_server.url, **extra)
        api = procs.start(f"w{workers}-api", [sys.executable, "-P", "-m", "gamead_cli", "serve", "--port", str(api_port)],
                          env)
        url = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        wpids = [procs.start(f"w{workers}-worker{k}",
                             [sys.executable, "-P", "-m", "gamead_cli", "worker", "--id", f"bench-{k}"], env).pid
                 for k in range(workers)]
        time.sleep(3.0)  # workers connected and pulling
        bodies_file = run_dir / "bodies.json"
        bodies_file.write_text(json.dumps([json.dumps(a) for a in generate_ads(2000, seed=7)]))
        paced_child(api_port, rate, 2.0, bodies_file, run_dir / "warm.json")  # warm-up
        tap = start_tap(nats_server.url, run_dir / "tap.json") if breakdown else None
        v0, n0 = varz(monitor), proc_cpu_seconds(nproc.pid) or 0.0
        w0 = sum(proc_cpu_seconds(p) or 0.0 for p in wpids)
        accepted = paced_child(api_port, rate, duration, bodies_file, run_dir / "paced.json")
        time.sleep(0.5)  # the last ads complete
        v1, n1 = varz(monitor), proc_cpu_seconds(nproc.pid) or 0.0
        w1 = sum(proc_cpu_seconds(p) or 0.0 for p in wpids)
        counts, tap = (stop_tap(tap, run_dir / "tap.json"), None) if tap else ({}, None)
        latency = wake_latency(url)
        del api
    finally:
        if tap is not None:
            tap.kill()
            tap.wait()
        procs.stop_all()
    ads = max(1, accepted)
    msgs = (v1["in_msgs"] + v1["out_msgs"]) - (v0["in_msgs"] + v0["out_msgs"]) - sum(counts.values())  # not the tap's
    return {
        "workers": workers, "accepted": accepted, "achievedRate": accepted / duration,
        "natsMsgsPerAd": msgs / ads, "natsCpuUsPerAd": (n1 - n0) / ads * 1e6,
        "natsBytesPerAd": ((v1["in_bytes"] + v1["out_bytes"]) - (v0["in_bytes"] + v0["out_bytes"])) / ads,
        "workersCpuUsPerAd": (w1 - w0) / ads * 1e6,
        "idleWakeMs": latency,
        "breakdownPerAd": {k: v / ads for k, v in sorted(counts.items(), key=lambda kv: -kv[1])},
        "distinctMsgsPerAd": sum(counts.values()) / ads,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,4,8")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--code", default=None, help="run the roles from this source tree (PYTHONPATH)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also count every message by class (msg_tap.py subscribed to '>' in its own process)")
    args = parser.parse_args()
    root = scratch_dir("gamead-bench-idle-")
    (root / "logs").mkdir()
    rows = []
    for n in (int(x) for x in args.workers.split(",")):
        row = one_run(root, n, args.rate, args.duration, args.code, args.breakdown)
        rows.append(row)
        wake = row["idleWakeMs"]
        print(f"{n} worker(s): {row['achievedRate']:.0f} ads/s accepted; per ad: {row['natsMsgsPerAd']:.1f} NATS "
              f"messages in + out at the server (/varz), {row['natsBytesPerAd']:.0f} bytes in + out, "
              f"NATS CPU {row['natsCpuUsPerAd']:.0f} µs, workers' CPU {row['workersCpuUsPerAd']:.0f} µs; "
              f"idle wake submit→start median {statistics.median(wake) if wake else float('nan'):.1f} ms "
              f"(max {max(wake) if wake else float('nan'):.1f} ms, {len(wake)} urgent ads)", flush=True)
        if row["breakdownPerAd"]:
            print(f"  distinct messages per ad (each counted once, as routed): {row['distinctMsgsPerAd']:.2f}")
            for kind, per_ad in row["breakdownPerAd"].items():
                print(f"  {per_ad:7.3f}  {kind}")
    first, last = rows[0], rows[-1]
    if first is not last:
        m = last["natsMsgsPerAd"] / first["natsMsgsPerAd"]
        c = last["natsCpuUsPerAd"] / max(1e-9, first["natsCpuUsPerAd"])
        verdict = "PASS" if max(m, c) <= 1.5 else "MISS"
        print(f"{last['workers']} workers / {first['workers']} worker, per ad: NATS messages {m:.2f}x, NATS CPU "
              f"{c:.2f}x (target <= 1.5x: {verdict})")
    if os.environ.get("BENCH_JSON"):
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
