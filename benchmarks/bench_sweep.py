"""Rate sweep of a ``gamead up``-like stack (issue 14, Hatchet-style): latency, CPU per ad per role and memory at
each steady submit rate, and the knee.

Run from the repository root::

    .venv/bin/python benchmarks/bench_sweep.py                      # 100, 250, 500, 750, 1,000, 1,500 … ads/s
    .venv/bin/python benchmarks/bench_sweep.py --quick              # smoke run: 100, 500, 1,000 ads/s, 5 s each
    .venv/bin/python benchmarks/bench_sweep.py --batch 50           # batched submits (POST /ads/batch, 50 ads each)
    .venv/bin/python benchmarks/bench_sweep.py --output json > sweep.json   # progress goes to stderr
    .venv/bin/python benchmarks/bench_sweep.py --rates 1000 --env GAMEAD_WORKER__LINGER_MS=0   # other settings

The stack is what ``gamead up`` runs, with default settings: an embedded ``nats-server`` (JetStream, file
storage, temp dir), one ``gamead serve`` and ``--workers`` (2) ``gamead worker`` processes at the default
concurrency, started as ``bench_pipeline.py`` starts them (its ``Stack``) and stopped by PID at the end, also on
Ctrl-C or failure. The API's per-client rate limit is raised out of reach (still enabled), as in
``bench_pipeline.py``: one address sends all the load.

Each step is **steady state**: an open-loop paced generator (a process of its own: ``bench_pipeline.py``'s
``_paced`` role, 64 keep-alive connections, one ad per ``POST /ads`` — **single submits**; with ``--batch N``,
``bench_common.paced_batches``, N ads per ``POST /ads/batch``) submits at the target rate for ``--step``
seconds (15), then the run waits (up to ``--drain`` s) for every accepted ad to complete. How completion is
seen (``--completions``):

* ``stored`` (the default): nothing watches the records during the step. The step ends when the work stream is
  empty (polled every 0.1 s: an ad is acknowledged only after its final record is stored); then, outside the
  measured window, the records stored since the step began are read back (:class:`StoredCompletions`), and an
  ad's completion time is the moment nats-server stored its final record (its stream timestamp, on this
  machine's clock);
* ``live``: as in ``bench_pipeline.py``, a core-NATS subscription to the ad-record KV bucket's subjects, in this
  process, sees every record write as it happens. It costs this process ~0.25 ms of CPU per ad and nats-server a
  copy of every record write, on the cores the stack runs on (session 23: nats-server 0.49 vs 0.43-0.45 ms per ad
  at 800 ads/s).

Printed per step:

* target and achieved rate (accepted ads / the sending window), ads/s;
* submit→completed p50/p95/p99, ms (from the moment the generator wrote the request to the moment the
  completed record was stored, or with ``live`` seen);
* CPU ms per ad for each role (API, each worker, nats-server) and all roles together, from /proc/PID/stat
  deltas between the first send and the last completion (with ``stored``: the poll that found the work stream
  empty), divided by the accepted ads; the generator's and this process's CPU are shown apart and not in "all
  roles";
* context switches per ad for each role, over the same span, per accepted ad (summed over
  ``/proc/PID/task/*/status``): **wake-ups**, the times its threads went to sleep waiting and so were woken
  again (``voluntary_ctxt_switches``), and **preemptions**, the times a runnable thread was switched out for
  another (``nonvoluntary_ctxt_switches``). A wake-up after milliseconds asleep costs a process more CPU
  than one after microseconds (``bench_wake_cost.py`` measures how much more on this machine), which is part
  of why an ad costs more CPU at a low steady rate than in a drain;
* peak RSS per role, MB (10^6 bytes), sampled every 0.5 s;
* the whole machine's busy cores and the load average: the box is shared, so a figure taken while it is busy
  elsewhere is low.

The sweep stops after the first step whose p95 exceeds ``--stop-p95-ms`` (10,000), whose achieved rate is
below 90 % of the target, or whose accepted ads do not all complete within ``--drain``. The knee is the highest
rate whose p95 ≤ 50 ms with the rate held.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_pipeline as pipeline  # noqa: E402
from bench_common import (  # noqa: E402
    RssPeaks,
    RunGuard,
    default_worker_concurrency,
    load_average,
    paced_batches,
    wait_workers_registered,
)
from bench_pipeline import THIS as PIPELINE  # noqa: E402
from bench_pipeline import (  # noqa: E402
    KvObserver,
    Procs,
    Stack,
    children_cpu_seconds,
    cpu_snapshot,
    lat_summary_ms,
    log,
    switches_snapshot,
    use_uvloop,
    write_bodies,
)

THIS = Path(__file__).resolve()
RATES = (100, 250, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000, 8000)
QUICK_RATES = (100, 500, 1000)
KNEE_P95_MS = 50.0
#: Issue 14's targets on 2 cores (gamead up, 2 workers, default settings).
TARGET_RATE = 1000.0  # p95 ≤ KNEE_P95_MS at this rate
TARGET_CPU_MS = 1.0  # all roles together, per ad
TARGET_RSS_MB = {"api": 120.0, "worker": 80.0}
HELD = 0.9  # achieved / target below this ends the sweep


# ====================================================================================================
# child role: open-loop paced batches (``--batch``)
# ====================================================================================================


def child_paced_batch(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="bench_sweep.py _paced_batch")
    for name, kind in (("--port", int), ("--bodies", str), ("--connections", int), ("--start-at", float),
                       ("--duration", float), ("--rate", float), ("--batch", int), ("--out", str)):
        p.add_argument(name, type=kind, required=True)
    a = p.parse_args(argv)
    use_uvloop()
    bodies = [b.encode() for b in json.loads(Path(a.bodies).read_text())]
    out = asyncio.run(paced_batches("127.0.0.1", a.port, bodies, a.rate, a.duration, a.batch, a.connections,
                                    a.start_at))
    Path(a.out).write_text(json.dumps(out))


# ====================================================================================================
# one step
# ====================================================================================================


class StoredCompletions:
    """When each ad's final record was stored, read from the ad-record stream **after** the step (``--completions
    stored``, the default): nothing watches the records while the stack works, so neither this process's CPU nor
    nats-server's forwarding of every record write to a watcher lands in the step (a live
    :class:`~bench_pipeline.KvObserver` took 0.2-0.3 ms of CPU per ad on the same two cores). The same
    interface as ``KvObserver``: ``done`` maps an ad id to (seconds since the epoch, the record's bytes).

    * :meth:`begin` (before a step, outside its window) notes the ad-record stream's last sequence;
    * :meth:`wait_for` waits until the work stream is empty (every accepted ad acknowledged, and an ad is
      acknowledged only after its final record is stored), polling its message count every 0.1 s (one JetStream
      API call each), or until its timeout; the stack is ``gamead up``'s, with one work stream
      (``queue.partitions`` 1). The moment it returns ends the step;
    * :meth:`collect` reads the ad-record stream from the noted sequence with a pull consumer of its own (deleted
      after) and keeps, per ad asked for, the first terminal record (``completed``, ``failed`` or ``dead``) stored
      before the step ended, with its stream timestamp: the moment nats-server stored it, on this machine's
      clock, as the generator's send times are. Raises RuntimeError if the work stream was drained but a record
      asked for was not read (a reader fault, not an ad that did not complete)."""

    def __init__(self) -> None:
        self.done: dict[str, tuple[float, bytes]] = {}
        self.nc: Any = None
        self._from_seq = 1  #: the first ad-record stream sequence of the step
        self._ended_at = 0.0  #: when the step ended (epoch s)
        self._drained = False  #: the work stream was empty when it ended
        self._reads = 0

    async def start(self, url: str) -> None:
        import nats  # noqa: PLC0415

        self.nc = await nats.connect(url, name="gamead-bench-completions")

    async def begin(self) -> None:
        """Note where the ad-record stream ends now: the step's records come after."""
        from gamead_core import names  # noqa: PLC0415

        info = await self.nc.jetstream().stream_info(names.ADS_BUCKET_STREAM)
        self._from_seq = info.state.last_seq + 1

    async def wait_for(self, ids: set[str], timeout: float) -> None:
        """Until the work stream holds no message, or ``timeout`` seconds (``ids``: unused, for the interface)."""
        from bench_worker_drain import backlog  # noqa: PLC0415

        js = self.nc.jetstream()
        deadline = time.monotonic() + timeout
        while (left := await backlog(js)) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        self._ended_at, self._drained = time.time(), not left

    async def collect(self, ids: set[str]) -> None:
        """Add to ``done`` the ads of ``ids`` whose terminal record was stored in the step (see the class)."""
        import nats.errors  # noqa: PLC0415
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy  # noqa: PLC0415

        from gamead_core import names  # noqa: PLC0415

        js = self.nc.jetstream()
        stream, prefix = names.ADS_BUCKET_STREAM, KvObserver.PREFIX
        self._reads += 1
        name = f"bench-completions-{os.getpid()}-{self._reads}"
        await js.add_consumer(stream, ConsumerConfig(
            name=name, deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self._from_seq,
            ack_policy=AckPolicy.NONE, filter_subject=prefix + ">", inactive_threshold=60.0, mem_storage=True))
        try:
            sub = await js.pull_subscribe_bind(name, stream)
            while True:
                try:
                    msgs = await sub.fetch(1000, timeout=5)
                except (nats.errors.TimeoutError, asyncio.TimeoutError):
                    break
                for msg in msgs:
                    key = msg.subject[len(prefix):]
                    stored = msg.metadata.timestamp.timestamp()
                    if (key in ids and key not in self.done and stored <= self._ended_at
                            and any(mark in msg.data for mark in KvObserver.TERMINAL)):
                        self.done[key] = (stored, msg.data)
                if msgs[-1].metadata.num_pending == 0:
                    break
            await sub.unsubscribe()
        finally:
            await js.delete_consumer(stream, name)
        if self._drained and not ids <= self.done.keys():
            raise RuntimeError(f"the work stream was drained but {len(ids - self.done.keys())} of {len(ids)} final "
                               "records were not read back")

    async def close(self) -> None:
        if self.nc is not None:
            await self.nc.close()


def _switches_per_ad(before: dict[str, tuple[int, int] | None], after: dict[str, tuple[int, int] | None],
                     n: int) -> dict[str, dict[str, float]]:
    """Per role and for all roles together, per accepted ad: ``wake_ups`` (times its threads went to sleep
    waiting and were woken: voluntary context switches) and ``preemptions`` (involuntary ones)."""
    out: dict[str, dict[str, float]] = {}
    for name, b in before.items():
        a = after.get(name)
        if b is not None and a is not None and n:
            out[name] = {"wake_ups": round((a[0] - b[0]) / n, 2), "preemptions": round((a[1] - b[1]) / n, 2)}
    out["all roles"] = {k: round(sum(v[k] for v in out.values()), 2) for k in ("wake_ups", "preemptions")}
    return out


def _per_ad_ms(before: dict[str, float | None], after: dict[str, float | None], n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, b in before.items():
        a = after.get(name)
        if name != "machine" and a is not None and b is not None and n:
            out[name] = round((a - b) / n * 1000.0, 3)
    out["all roles"] = round(sum(out.values()), 3)
    return out


async def one_step(stack: Stack, procs: Procs, obs: KvObserver | StoredCompletions, tmp: Path, a: argparse.Namespace,
                   rate: float) -> dict[str, Any]:
    out = tmp / f"paced-{rate:g}.json"
    start_at = time.time() + 1.0
    common = ["--port", str(stack.port), "--bodies", str(tmp / "bodies.json"), "--start-at", str(start_at),
              "--duration", str(a.step), "--rate", str(rate), "--out", str(out)]
    if a.batch:
        argv = [sys.executable, str(THIS), "_paced_batch", *common, "--batch", str(a.batch),
                "--connections", str(a.connections)]
    else:
        argv = [sys.executable, str(PIPELINE), "_paced", *common, "--connections", str(a.connections)]
    await obs.begin()  # outside the window
    pids = stack.pids()
    gen_cpu0 = children_cpu_seconds()
    gen = procs.start(f"paced-{rate:g}", argv)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    before, switches0 = cpu_snapshot(pids), switches_snapshot(pids)
    self0 = time.process_time()
    t0 = time.monotonic()
    load_at_start = load_average()
    with RssPeaks(pids) as rss:
        while gen.poll() is None:
            await asyncio.sleep(0.1)
        procs.items = [(n, q) for n, q in procs.items if q is not gen]
        if gen.returncode != 0 or not out.exists():
            raise RuntimeError(f"the paced generator failed (exit {gen.returncode}); see {procs.logdir}")
        d = json.loads(out.read_text())
        recs = d["records"]
        accepted = {r[0]: r for r in recs if r[4] == 202 and r[0]}
        await obs.wait_for(set(accepted), a.drain)
        after, switches1 = cpu_snapshot(pids), switches_snapshot(pids)
        wall = time.monotonic() - t0
    gen_cpu = children_cpu_seconds() - gen_cpu0
    observer_cpu = time.process_time() - self0
    await obs.collect(set(accepted))  # after the window: its reads are not the step's cost
    lat = [obs.done[i][0] - r[2] for i, r in accepted.items() if i in obs.done]
    statuses = Counter(str(r[4]) for r in recs)
    sent = [r[2] for r in recs if r[4] == 202]
    window = (max(sent) - min(sent)) if len(sent) > 1 else 0.0
    # ads per second between the first and the last send: the ads of the last request (one, or one batch) are
    # sent at the window's end, so they do not count in it
    achieved = (len(sent) - sent.count(max(sent))) / window if window else 0.0
    missing = len(accepted) - len(lat)
    machine = ((after["machine"] or 0.0) - (before["machine"] or 0.0)) / wall if before["machine"] else None
    ours = sum((after[k] or 0.0) - (b or 0.0) for k, b in before.items() if k != "machine") + gen_cpu + observer_cpu
    obs.done.clear()  # the records of this step are no longer needed: keep the observer's memory flat
    step = {
        "target": rate,
        "achieved": round(achieved, 1),
        "accepted": len(accepted),
        "planned": d["planned"],
        "unsent": d["unsent"],
        "post_status": dict(statuses),
        "completed_within_drain": len(lat),
        "missing": missing,
        "latency_ms": lat_summary_ms(lat),
        "cpu_ms_per_ad": _per_ad_ms(before, after, len(accepted)),
        "switches_per_ad": _switches_per_ad(switches0, switches1, len(accepted)),
        "generator_cpu_ms_per_ad": round(gen_cpu / max(1, len(accepted)) * 1000.0, 3),
        "observer_cpu_ms_per_ad": round(observer_cpu / max(1, len(accepted)) * 1000.0, 3),
        "rss_mb_peak": {k: round(v, 1) for k, v in rss.peak.items()},
        "machine_busy_cores": None if machine is None else round(machine, 2),
        "other_tenants_cores": None if machine is None else round(max(0.0, machine - ours / wall), 2),
        "load_average": f"{load_at_start} → {load_average()}",
        "seconds": round(wall, 1),
    }
    p95 = step["latency_ms"]["p95"]
    step["held"] = achieved >= HELD * rate and missing == 0
    step["stop"] = (not step["held"]) or p95 is None or p95 > a.stop_p95_ms
    return step


def knee(steps: list[dict[str, Any]]) -> float | None:
    """The highest target rate whose p95 ≤ 50 ms with the rate held and every ad completed."""
    ok = [s["target"] for s in steps if s["held"] and s["latency_ms"]["p95"] is not None
          and s["latency_ms"]["p95"] <= KNEE_P95_MS]
    return max(ok) if ok else None


def targets(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 14's targets, each with the value this run measured and PASS/MISS (None: not measured)."""
    at = next((s for s in steps if s["target"] == TARGET_RATE), None)
    p95 = at["latency_ms"]["p95"] if at and at["held"] else None
    held = [s for s in steps if s["held"]]
    top = max(held, key=lambda s: s["target"]) if held else None
    cpu = top["cpu_ms_per_ad"]["all roles"] if top else None
    rss = {role: max((v for s in steps for k, v in s["rss_mb_peak"].items() if k.startswith(role)), default=None)
           for role in TARGET_RSS_MB}
    # the sweep stopped below the target rate: the system could not hold a lower rate, so the target is missed
    stopped_below = bool(steps) and steps[-1]["stop"] and steps[-1]["target"] < TARGET_RATE
    verdict = (p95 is not None and p95 <= KNEE_P95_MS) if at else (False if stopped_below else None)
    note = None if at or not steps else f"not reached: the sweep ended at {steps[-1]['target']:,.0f} ads/s"
    out = [
        {"figure": f"p95 submit→completed at {TARGET_RATE:,.0f} ads/s, ms", "value": p95,
         "target": f"≤ {KNEE_P95_MS:g}", "pass": verdict, "note": note},
        {"figure": "CPU ms per ad, all roles, at the highest rate held"
                   + (f" ({top['target']:,.0f} ads/s)" if top else ""), "value": cpu,
         "target": f"≤ {TARGET_CPU_MS:g}", "pass": None if cpu is None else cpu <= TARGET_CPU_MS, "note": None},
    ]
    for role, limit in TARGET_RSS_MB.items():
        v = rss[role]
        out.append({"figure": f"peak RSS of the {role}, MB", "value": None if v is None else round(v, 1),
                    "target": f"≤ {limit:g}", "pass": None if v is None else v <= limit, "note": None})
    return out


async def sweep(stack: Stack, procs: Procs, tmp: Path, a: argparse.Namespace, rates: list[float],
                results: dict[str, Any]) -> None:
    import httpx  # noqa: PLC0415

    assert stack.nats is not None
    obs: KvObserver | StoredCompletions = KvObserver() if a.completions == "live" else StoredCompletions()
    await obs.start(stack.nats.url)
    try:
        bodies = json.loads((tmp / "bodies.json").read_text())
        warm: set[str] = set()
        await obs.begin()
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
            for k in range(100):
                r = await client.post("/ads", content=bodies[k % len(bodies)].encode())
                r.raise_for_status()
                warm.add(r.json()["id"])
        await obs.wait_for(warm, 30)
        await obs.collect(warm)
        if not warm <= obs.done.keys():
            raise RuntimeError(f"the workers did not complete the warm-up ads; see {procs.logdir}")
        obs.done.clear()
        for rate in rates:
            log(f"step {rate:g} ads/s for {a.step:g} s (load average {load_average()})")
            step = await one_step(stack, procs, obs, tmp, a, rate)
            results["steps"].append(step)
            lat = step["latency_ms"]
            log(f"  achieved {step['achieved']:,.0f}/s, p50/p95/p99 {lat['p50']}/{lat['p95']}/{lat['p99']} ms, "
                f"all roles {step['cpu_ms_per_ad']['all roles']} CPU ms per ad, missing {step['missing']}")
            if step["stop"]:
                log("  the rate was not held or p95 passed the stop line: sweep ends here")
                break
            await asyncio.sleep(1.0)
    finally:
        await obs.close()


# ====================================================================================================
# output
# ====================================================================================================


def _f(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def print_table(results: dict[str, Any]) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    steps = results["steps"]
    workers = [k for k in (steps[0]["cpu_ms_per_ad"] if steps else {}) if k.startswith("worker")]
    how = (f"batched submits ({results['batch']} ads per POST /ads/batch)" if results["batch"]
           else "single submits (one ad per POST /ads)")
    t = Table(title=f"gamead rate sweep — steady state, {how}, open loop, {results['step_seconds']:g} s per step; "
                    f"{results['workers']} workers × concurrency {results['concurrency']}; {results['cpus']} cores "
                    "(shared); settings: " + (" ".join(f"{k}={v}" for k, v in results["settings"].items())
                                              or "defaults"), title_justify="left")
    roles = ("api", *workers, "nats")
    for col in ("target /s", "achieved /s", "p50", "p95", "p99", *(f"CPU {r}" for r in roles), "CPU all",
                *(f"RSS {r}" for r in roles), "busy cores", "others' cores",
                "load 1m"):
        t.add_column(col, justify="right", min_width=min(len(col), 9))
    t.caption = ("rates in ads/s; p50/p95/p99 submit→completed in ms; CPU in ms per ad (all = API + workers + "
                 "nats-server); RSS = peak MB; busy cores = the whole machine's; others' cores = busy cores not "
                 "used by this benchmark's processes (other tenants); load 1m at the end of the step")
    for s in steps:
        lat, cpu, rss = s["latency_ms"], s["cpu_ms_per_ad"], s["rss_mb_peak"]
        flag = "" if s["held"] else " (not held)"
        t.add_row(f"{s['target']:,.0f}", _f(s["achieved"], 0) + flag, _f(lat["p50"]), _f(lat["p95"]),
                  _f(lat["p99"]), *(_f(cpu.get(r), 2) for r in roles), _f(cpu.get("all roles"), 2),
                  *(_f(rss.get(r), 0) for r in roles), _f(s["machine_busy_cores"], 2),
                  _f(s["other_tenants_cores"], 2), s["load_average"].split(" → ")[-1].split(" / ")[0])
    Console(width=max(210, shutil.get_terminal_size().columns)).print(t)
    k = results["knee"]
    print(f"knee (highest rate with p95 ≤ {KNEE_P95_MS:g} ms, rate held): "
          f"{'none' if k is None else f'{k:,.0f} ads/s'}")
    print("CPU ms per ad: each role's /proc/PID/stat CPU from the first send to the last completion of the step, "
          "divided by the accepted ads; RSS: peak resident set per process during the step (MB = 10^6 bytes).")
    gens = ", ".join(f"{s['target']:g}/s: {s['generator_cpu_ms_per_ad']:.2f} + {s['observer_cpu_ms_per_ad']:.2f}"
                     for s in steps)
    print(f"not in 'all roles': load generator + this process ({results['completions']} completions), "
          f"CPU ms per ad: {gens}")
    print("context switches per ad, wake-ups (a role's threads went to sleep waiting and were woken) / "
          "preemptions (a runnable thread switched out for another):")
    for s in steps:
        print(f"  {s['target']:g}/s: " + ", ".join(f"{k} {v['wake_ups']:.1f} / {v['preemptions']:.1f}"
                                                   for k, v in s["switches_per_ad"].items()))
    for t in results["targets"]:
        verdict = "-" if t["pass"] is None else "PASS" if t["pass"] else "MISS"
        print(f"target: {t['figure']}: {_f(t['value'], 2)} (target {t['target']}): {verdict}"
              + (f" — {t['note']}" if t["note"] else ""))
    missing = [s for s in steps if s["missing"]]
    for s in missing:
        print(f"{s['target']:g}/s: {s['missing']:,} of {s['accepted']:,} accepted ads did not complete within "
              f"the {results['drain_seconds']:g} s drain (their latency is not in the percentiles)")


# ====================================================================================================
# main
# ====================================================================================================


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 100, 500, 1,000 ads/s, 5 s per step")
    p.add_argument("--rates", help="comma-separated target rates, ads/s (default 100,250,500,750,1000,1500,2000,…)")
    p.add_argument("--step", type=float, help="seconds of paced submission per step (default 15, quick 5)")
    p.add_argument("--drain", type=float, default=20.0, help="longest wait for a step's last completions (20 s)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (2, as gamead up)")
    p.add_argument("--concurrency", type=int, help="--concurrency of each worker (default: worker.concurrency)")
    p.add_argument("--batch", type=int, default=0, help="submit N ads per POST /ads/batch instead of single POSTs")
    p.add_argument("--connections", type=int, default=64, help="keep-alive connections of the generator (64)")
    p.add_argument("--stop-p95-ms", type=float, default=10_000.0, help="end the sweep after a step above this p95")
    p.add_argument("--output", choices=("table", "json"), default="table", help="summary format on stdout")
    p.add_argument("--completions", choices=("stored", "live"), default="stored",
                   help="stored: each ad's completion time is when nats-server stored its final record, read "
                        "after the step (default); live: a subscriber sees every record write during the step")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, raw results)")
    p.add_argument("--env", action="append", default=[], metavar="GAMEAD_X=V",
                   help="a setting every role runs with, e.g. GAMEAD_WORKER__LINGER_MS=0 (repeatable)")
    a = p.parse_args(argv)
    for pair in a.env:
        key, eq, value = pair.partition("=")
        if not eq or not key.startswith("GAMEAD_"):
            p.error(f"--env {pair!r}: expected GAMEAD_NAME=value")
        pipeline.EXTRA_ENV[key] = value
    a.step = a.step if a.step is not None else (5.0 if a.quick else 15.0)
    if a.rates:
        a.rate_list = [float(x) for x in a.rates.split(",") if x.strip()]
    else:
        a.rate_list = [float(x) for x in (QUICK_RATES if a.quick else RATES)]
    if a.batch < 0 or any(r <= 0 for r in a.rate_list):
        p.error("--batch and the rates must be positive")
    return a


def main(argv: list[str]) -> int:
    if argv and argv[0] == "_paced_batch":
        child_paced_batch(argv[1:])
        return 0
    a = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="gamead-bench-sweep-"))
    (tmp / "logs").mkdir()
    procs = Procs(tmp / "logs")
    concurrency = a.concurrency or default_worker_concurrency()
    results: dict[str, Any] = {
        "what": "rate sweep, steady state, open loop; " + (f"batched submits of {a.batch}" if a.batch
                                                            else "single submits"),
        "settings": dict(pipeline.EXTRA_ENV),
        "workers": a.workers, "concurrency": concurrency, "batch": a.batch, "step_seconds": a.step,
        "completions": a.completions,
        "drain_seconds": a.drain, "cpus": os.cpu_count(), "load_average_start": load_average(), "steps": [],
    }

    with RunGuard(procs, a, tmp / "logs") as run:
        write_bodies(tmp / "bodies.json", 2000, seed=random.randrange(1 << 30))
        log(f"starting NATS, one API and {a.workers} workers (concurrency {concurrency}); logs in {tmp / 'logs'}")
        stack = Stack(procs, tmp, "sweep").start()
        stack.start_workers(a.workers, concurrency)
        wait_workers_registered(stack, a.workers)
        use_uvloop()
        asyncio.run(sweep(stack, procs, tmp, a, a.rate_list, results))
    results["knee"] = knee(results["steps"])
    results["targets"] = targets(results["steps"])
    results["load_average_end"] = load_average()
    if results["steps"]:
        if a.output == "json":
            print(json.dumps(results, indent=2))
        else:
            print_table(results)
    return run.finish(tmp)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
