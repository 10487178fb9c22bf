"""outage38: the API's answers while nats-server is frozen (SIGSTOP, by PID) for 10 s: a store known failing.

Two modes, each on a fresh nats-server and ``gamead serve`` (loopback ports given) running the code at ``--code``
(a checkout: put first on ``PYTHONPATH`` of both, so two commits compare in one sitting):

* ``timeline``: 10 clients, each sending ``POST /ads`` one after another for 20 s, the freeze from 3 s to 13 s:
  requests answered in the window and how many took over 1 s (before outage38 each refusal waited the 2 s publish
  timeout; now all but the trials are ``storage_failing`` at once);
* ``submit``: ``gamead submit --count 5000 --rate 500`` with the freeze 3 s after its start, and one canary client
  sending single submits meanwhile: the run's summary (accepted, not queued, outages, elapsed).

Usage: ``python benchmarks/bench_store_outage.py {timeline,submit} --code DIR --nats-port P --api-port Q``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

AD = {"title": "S", "description": "d", "genre": "RPG", "callToAction": "Play", "duration": 30}


def post(client: httpx.Client) -> str:
    try:
        answer = client.post("/ads", json=AD)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return "202" if answer.status_code < 400 else str(answer.json().get("error", {}).get("code"))


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("mode", choices=("timeline", "submit"))
    args.add_argument("--code", required=True)
    args.add_argument("--nats-port", type=int, required=True)
    args.add_argument("--api-port", type=int, required=True)
    opts = args.parse_args()
    run = Path(tempfile.mkdtemp(prefix="gamead-bench-store-outage-"))
    (run / "nats.conf").write_text(f'listen: "127.0.0.1:{opts.nats_port}"\njetstream {{ store_dir: "{run}/js" }}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMEAD_")} | {"PYTHONPATH": opts.code}
    nats = subprocess.Popen([str(Path(sys.executable).parent / "nats-server"), "-c", str(run / "nats.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = subprocess.Popen([sys.executable, "-m", "gamead_cli", "serve", "--port", str(opts.api_port)], cwd=run,
                           env=env | {"GAMEAD_NATS__URL": f"nats://127.0.0.1:{opts.nats_port}",
                                      "GAMEAD_RATELIMIT__ENABLED": "false"},
                           stdout=open(run / "api.log", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{opts.api_port}"
    rows: list[tuple[float, float, str]] = []  # (start, seconds, answer) of each single submit
    stop = threading.Event()
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        t0 = time.monotonic()

        def sender() -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                while not stop.is_set():
                    start = time.monotonic()
                    code = post(client)
                    rows.append((start - t0, time.monotonic() - start, code))

        sub = None
        if opts.mode == "submit":
            sub = subprocess.Popen([sys.executable, "-m", "gamead_cli", "submit", "--count", "5000", "--rate", "500",
                                    "--title", "M", "--genre", "RPG", "--api", url, "-o", "json"], cwd=run,
                                   env=env | {"COLUMNS": "300"}, stdout=subprocess.PIPE,
                                   stderr=open(run / "submit.err", "w"), text=True)
        threads = [threading.Thread(target=sender) for _ in range(10 if opts.mode == "timeline" else 1)]
        for thread in threads:
            thread.start()
        time.sleep(3)
        os.kill(nats.pid, signal.SIGSTOP)
        time.sleep(10)
        os.kill(nats.pid, signal.SIGCONT)
        summary = json.loads(sub.communicate(timeout=300)[0]) if sub is not None else {}
        if sub is None:
            time.sleep(7)
        stop.set()
        for thread in threads:
            thread.join()
        window = [r for r in rows if 3 <= r[0] < 13]
        codes: dict[str, int] = {}
        for r in window:
            codes[r[2]] = codes.get(r[2], 0) + 1
        print(json.dumps({"mode": opts.mode, "code": opts.code, "inFreeze": len(window), "answers": codes,
                          "overOneSecond": sum(1 for r in window if r[1] > 1),
                          "submit": {k: summary.get(k) for k in ("sent", "accepted", "rejected", "retried",
                                                                 "maybeQueued", "notQueued", "outages",
                                                                 "pausedSeconds", "elapsedSeconds")}}))
    finally:
        for proc in (api, nats):
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            proc.wait(10)
        if not os.environ.get("GAMEAD_BENCH_KEEP"):
            shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
