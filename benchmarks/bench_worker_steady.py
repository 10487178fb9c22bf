"""One worker process's CPU per ad at steady rates vs draining a backlog, with no API (issue 14: steady ads vs
drained ones).

Run from the repository root::

    .venv/bin/python benchmarks/bench_worker_steady.py                     # 100, 250, 500 ads/s; 3 rounds (~3 min)
    .venv/bin/python benchmarks/bench_worker_steady.py --rates 100,1000 --ads 1000 --rounds 1
    .venv/bin/python benchmarks/bench_worker_steady.py --output json       # for scripts

One fresh ``nats-server`` with gamead's topology, no ``gamead serve``: this process writes each ad as the API
does (its record created and acknowledged, then its message published with the record's revision,
``bench_worker_drain.publish_records``, one ad at a time). Contenders, in an order that rotates from round
to round, each with a fresh ``gamead worker`` process at the default settings:

* **steady, R ads/s**: ``--ads`` ads published at R ads/s (open loop, paced from the first), while the worker runs
  them as they come. Measured from the first publish to the moment the work stream is empty again;
* **backlog**: ``--ads`` ads published first, then drained (``bench_worker_drain.py``'s gamead contender: timed
  from the worker's first acknowledged ad to an empty stream).

Printed per contender: the worker's CPU µs per ad (``/proc/PID/stat``) and its wake-ups per ad
(``voluntary_ctxt_switches`` over its threads: times it slept waiting and was woken), medians over rounds, and
CPU × backlog (the median of the rounds' own ratios); the steady contenders' achieved publish rates and this
process's own CPU per ad while it publishes (it runs beside the worker then, and is idle during a backlog's
drain). No API and no HTTP load generator run, unlike in ``bench_sweep.py``; ``bench_cold_work.py`` measures how
much a gap between two ads costs the same per-ad work with no I/O at all. The steady worker's figure includes
its per-second work (heartbeats, the reaper, ~4-7 ms a second idle) spread over the ads. Every process is
stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_common import comma_floats, finish_main, rounds_and_output  # noqa: E402
from bench_pipeline import Procs, gamead_env, proc_cpu_seconds, proc_switches, required  # noqa: E402
from bench_worker_drain import drain_gamead, make_records, publish_backlog, publish_records, wait_drained  # noqa: E402
from gamead_core.config import GameadSettings  # noqa: E402
from gamead_core.embedded import EmbeddedNats  # noqa: E402
from gamead_core.queue.topology import ensure_topology  # noqa: E402
from gamead_core.store.ads import AdStore  # noqa: E402

BACKLOG = "backlog (burn-down)"


async def steady(url: str, n: int, rate: float, procs: Procs, seed: int) -> dict[str, float]:
    """``n`` ads at ``rate`` ads/s to a fresh worker: its CPU µs and wake-ups per ad, this process's CPU µs per ad
    (the publisher's), and the rate achieved. Raises RuntimeError if the worker exits, or stalls (no ad drained for
    ``bench_worker_drain.STUCK_AFTER`` s)."""
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=10)
    await ensure_topology(js, GameadSettings())
    store = AdStore(nc, js, timeout=30)
    todo = make_records(n, seed)
    worker = procs.start("steady-worker", [sys.executable, "-P", "-m", "gamead_cli", "worker", "--id",
                                           "bench-steady"], gamead_env(url))
    try:
        await publish_records(js, store, make_records(1, seed + 1))  # the worker is up once it has run this one
        await wait_drained(js, worker, "run its first ad")
        pid = worker.pid
        cpu0, wake0 = required(proc_cpu_seconds(pid), pid), required(proc_switches(pid), pid)[0]
        mine0, t0 = time.process_time(), time.monotonic()
        for i, record in enumerate(todo):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await publish_records(js, store, [record])
        sent = time.monotonic() - t0
        await wait_drained(js, worker)
        cpu1, wake1 = required(proc_cpu_seconds(pid), pid), required(proc_switches(pid), pid)[0]
        mine = time.process_time() - mine0
    finally:
        procs.stop(worker)
        await nc.close()
    return {"cpu_us": (cpu1 - cpu0) / n * 1e6, "wakeups": (wake1 - wake0) / n, "publisher_us": mine / n * 1e6,
            "achieved": (n - 1) / sent if sent > 0 else 0.0}


async def burn_down(url: str, n: int, procs: Procs, seed: int) -> dict[str, float]:
    """``n`` ads published first, then drained by a fresh worker (``bench_worker_drain.drain_gamead``)."""
    await publish_backlog(url, n, seed)
    return await drain_gamead(url, n, procs, None)


def label(rate: float) -> str:
    return f"steady, {rate:g} ads/s"


def run(args: argparse.Namespace) -> dict[str, object]:
    names_ = [label(r) for r in args.rates] + [BACKLOG]
    rounds: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "logs").mkdir()
        procs = Procs(root / "logs")
        server = EmbeddedNats(root / "nats").start()
        try:
            for r in range(args.rounds):
                this: dict[str, dict[str, float]] = {}
                for k in range(len(names_)):
                    name = names_[(k + r) % len(names_)]
                    seed = 1000 * r + k
                    if name == BACKLOG:
                        this[name] = asyncio.run(burn_down(server.url, args.ads, procs, seed))
                    else:
                        rate = args.rates[names_.index(name)]
                        this[name] = asyncio.run(steady(server.url, args.ads, rate, procs, seed))
                    print(f"[bench] round {r + 1}, {name}: worker {this[name]['cpu_us']:.0f} µs CPU per ad",
                          file=sys.stderr)
                rounds.append(this)
        finally:
            procs.stop_all()
            server.stop()
    rows = []
    for name in names_:
        rows.append({
            "contender": name,
            "cpu_us_per_ad": round(statistics.median(r[name]["cpu_us"] for r in rounds), 1),
            "x_backlog": round(statistics.median(r[name]["cpu_us"] / r[BACKLOG]["cpu_us"] for r in rounds), 2),
            "wakeups_per_ad": (round(statistics.median(r[name]["wakeups"] for r in rounds), 2)
                               if name != BACKLOG else None),
            "publisher_cpu_us_per_ad": (round(statistics.median(r[name]["publisher_us"] for r in rounds), 1)
                                        if name != BACKLOG else None),
            "achieved_per_s": (round(statistics.median(r[name]["achieved"] for r in rounds), 1)
                               if name != BACKLOG else round(statistics.median(r[name]["rate"] for r in rounds), 1)),
        })
    return {"ads": args.ads, "rounds": args.rounds, "cores": os.cpu_count(), "rows": rows}


def print_table(res: dict[str, object]) -> None:
    print(f"one gamead worker (default settings), {res['ads']:,} ads per contender, median of {res['rounds']} rounds, "
          f"{res['cores']} cores, no API")
    print(f"{'contender':<24} {'worker CPU µs per ad':>21} {'× backlog':>10} {'wake-ups per ad':>16} {'ads/s':>8} "
          f"{'publisher µs per ad':>20}")
    rows: list[dict[str, Any]] = res["rows"]  # type: ignore[assignment]
    for row in rows:
        wake = "-" if row["wakeups_per_ad"] is None else f"{row['wakeups_per_ad']:.2f}"
        pub = "-" if row["publisher_cpu_us_per_ad"] is None else f"{row['publisher_cpu_us_per_ad']:.0f}"
        print(f"{row['contender']:<24} {row['cpu_us_per_ad']:>21.0f} {row['x_backlog']:>10.2f} {wake:>16} "
              f"{row['achieved_per_s']:>8.0f} {pub:>20}")
    print("ads/s: published (steady) or drained (backlog); wake-ups: the worker's voluntary context switches per ad; "
          "× backlog: the median of each round's ratio; publisher: this process's CPU per ad while it feeds the "
          "worker (it is idle during the backlog's drain)")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ads", type=int, default=2000, help="ads per contender per round (2,000)")
    p.add_argument("--rates", type=comma_floats, default=[100.0, 250.0, 500.0],
                   help="steady rates, ads/s, comma-separated (100,250,500)")
    rounds_and_output(p)
    return finish_main(p, argv, lambda a: None if a.ads >= 10 and a.rounds >= 1 and all(r > 0 for r in a.rates)
                       else "--ads must be ≥ 10, --rounds ≥ 1 and every rate > 0", run, print_table)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
