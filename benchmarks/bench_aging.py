"""Measure the aging bound: how long new and retried ads of priority 2-5 wait behind a steady p1 stream.

Run from the repository root (about a minute with the defaults)::

    .venv/bin/python benchmarks/bench_aging.py
    .venv/bin/python benchmarks/bench_aging.py --aging-step 10 --output json    # the default step: ~3 min

What runs: an embedded ``nats-server`` (temp dir), one ``gamead serve`` and one ``gamead worker`` with a
single slot (``--latency-ms`` of simulated analysis each), and a p1 stream paced just above what the slot
serves (``--overload``), so the p1 level is never empty. Once the stream runs, one *fresh* and one
*retried* ad per priority 2-5 are submitted; a retried ad fails its first attempt (fault injection,
``worker.faults.attempts=1``) and is retried after its backoff. For each, the script records (from the
records' own timestamps, read through a subscription to the KV bucket):

* ``wait``: from when it became due (submitted, or its ``retryAt``) to when its analysis started;
* ``p1 wait``: the wait of the p1 ad that started right after it — how long the p1 head had waited;
* ``excess`` = wait − p1 wait, against the bound (p − 1) × aging_step: served in the order of
  (became due) + level × aging_step, an ad waits (p − 1) steps longer than the p1 head it overtakes.

Every process it starts is stopped by PID at the end, also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import nats  # noqa: E402

from gamead_core import names  # noqa: E402
from gamead_core.embedded import EmbeddedNats  # noqa: E402
from benchmarks.needs_test_install import require  # noqa: E402

require(__file__)

from tests.support import SAMPLE_AD, Proc, start_api, start_worker, wait_for  # noqa: E402


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


class Writes:
    """Every record write, from a subscription to the KV bucket's subjects (in a thread of its own)."""

    def __init__(self, url: str) -> None:
        self.retry_at: dict[str, float] = {}
        self.starts: dict[str, list[float]] = {}
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run(url)), daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    async def _run(self, url: str) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        nc = await nats.connect(url)

        async def on_msg(msg) -> None:  # noqa: ANN001
            if not msg.data:
                return
            rec = json.loads(msg.data)
            if rec.get("status") == "queued" and rec.get("retryAt"):
                self.retry_at.setdefault(rec["id"], _ts(rec["retryAt"]))
            if rec.get("status") == "processing":
                self.starts.setdefault(rec["id"], []).append(_ts(rec["startedAt"]))

        await nc.subscribe(f"$KV.{names.ADS_BUCKET}.>", cb=on_msg)
        await nc.flush()
        self._ready.set()
        await self._stop.wait()
        await nc.drain()

    def close(self) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aging-step", type=float, default=2.0, help="queue.aging_step in seconds")
    parser.add_argument("--latency-ms", type=int, default=100, help="simulated analysis time per ad")
    parser.add_argument("--overload", type=float, default=1.05, help="p1 arrival rate / service rate")
    parser.add_argument("--output", choices=["table", "json"], default="table")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="gamead-bench-aging-"))
    procs: list[Proc] = []
    server = EmbeddedNats(tmp / "nats").start()
    writes: Writes | None = None
    stop_stream = threading.Event()
    try:
        api, url = start_api(server.url, tmp, GAMEAD_LOG__LEVEL="WARNING")
        procs.append(api)
        procs.append(start_worker(
            server.url, tmp, concurrency=1, GAMEAD_LOG__LEVEL="WARNING",
            GAMEAD_QUEUE__AGING_STEP=str(args.aging_step),
            GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS=str(args.latency_ms), GAMEAD_WORKER__BACKOFF_BASE="0.2",
            GAMEAD_WORKER__FAULTS__RATE="1", GAMEAD_WORKER__FAULTS__MATCH="^Retried",
            GAMEAD_WORKER__FAULTS__ATTEMPTS="1",
            GAMEAD_WORKER__PROCESSING_MARK_AFTER="0",  # every start written: this benchmark reads starts from it
        ))
        writes = Writes(server.url)
        http = httpx.Client(base_url=url, timeout=10)

        def submit(title: str, priority: int) -> str:
            resp = http.post("/ads", json={**SAMPLE_AD, "title": title, "priority": priority})
            resp.raise_for_status()
            return str(resp.json()["id"])

        # the slot's service rate, measured: 20 p1 ads back to back
        warm = [submit(f"Warm {i}", 1) for i in range(20)]
        wait_for(lambda: all(http.get(f"/ads/{i}").json()["status"] == "completed" for i in warm), timeout=60,
                 what="the warm-up")
        starts = sorted(writes.starts[i][-1] for i in warm)
        service_rate = (len(starts) - 1) / (starts[-1] - starts[0])  # start to start: one slot, back to back
        interval = 1 / (service_rate * args.overload)
        stream: list[str] = []

        def urgent() -> None:
            with httpx.Client(base_url=url, timeout=10) as c:
                i = 0
                while not stop_stream.is_set():
                    resp = c.post("/ads", json={**SAMPLE_AD, "title": f"Urgent {i}", "priority": 1})
                    stream.append(str(resp.json()["id"]))
                    i += 1
                    time.sleep(interval)  # the load's pace

        feeder = threading.Thread(target=urgent, daemon=True)
        feeder.start()
        wait_for(lambda: len(stream) >= 20, timeout=30, what="the stream")
        probes = {(p, kind): submit(f"{kind.title()} p{p}", p) for p in (2, 3, 4, 5) for kind in ("fresh", "retried")}
        horizon = 4 * args.aging_step * 3 + 60
        wait_for(lambda: all(http.get(f"/ads/{i}").json()["status"] == "completed" for i in probes.values()),
                 timeout=horizon, interval=0.5, what="every probe ad")
        stop_stream.set()
        feeder.join(10)
        p1_starts = sorted((writes.starts[i][-1], i) for i in stream if i in writes.starts)
        rows = []
        for (p, kind), ad_id in sorted(probes.items()):
            rec = http.get(f"/ads/{ad_id}").json()
            due = writes.retry_at[ad_id] if kind == "retried" else _ts(rec["submittedAt"])
            started = writes.starts[ad_id][-1]
            nxt = next((i for t, i in p1_starts if t >= started), None)
            p1_wait = None
            if nxt is not None:
                r1 = http.get(f"/ads/{nxt}").json()
                p1_wait = writes.starts[nxt][-1] - _ts(r1["submittedAt"])
            wait = started - due
            rows.append({
                "priority": p, "kind": kind, "wait_s": round(wait, 2),
                "p1_wait_s": None if p1_wait is None else round(p1_wait, 2),
                "excess_s": None if p1_wait is None else round(wait - p1_wait, 2),
                "bound_s": round((p - 1) * args.aging_step, 2),
            })
        summary = {"aging_step_s": args.aging_step, "service_rate_per_s": round(service_rate, 2),
                   "p1_rate_per_s": round(1 / interval, 2), "rows": rows}
        if args.output == "json":
            print(json.dumps(summary, indent=2))
        else:
            print(f"aging_step {args.aging_step:g} s; one slot serving {service_rate:.1f} ads/s; "
                  f"p1 stream {1 / interval:.1f} ads/s")
            print(f"{'priority':>8} {'kind':>8} {'wait s':>8} {'p1 wait s':>10} {'excess s':>9} {'bound s':>8}")
            for r in rows:
                print(f"{r['priority']:>8} {r['kind']:>8} {r['wait_s']:>8} {str(r['p1_wait_s']):>10} "
                      f"{str(r['excess_s']):>9} {r['bound_s']:>8}")
        return 0
    finally:
        stop_stream.set()
        if writes is not None:
            writes.close()
        for proc in procs:
            proc.stop(timeout=10)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
