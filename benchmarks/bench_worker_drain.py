"""One worker process draining a backlog vs a raw nats-py fetch+ack loop running the same analyser (issue 14).

Run from the repository root::

    .venv/bin/python benchmarks/bench_worker_drain.py                    # 10,000 ads, 3 rounds, medians
    .venv/bin/python benchmarks/bench_worker_drain.py --ads 3000 --rounds 1 --profile /tmp/worker.prof
    .venv/bin/python benchmarks/bench_worker_drain.py --code /tmp/main-src   # and a worker of another checkout
    .venv/bin/python benchmarks/bench_worker_drain.py --prefetch 0,4,8,16    # and the worker at each worker.prefetch
    .venv/bin/python benchmarks/bench_worker_drain.py --env GAMEAD_METRICS__ENABLED=false   # and under other settings

One fresh ``nats-server`` with gamead's topology. Each round, per contender, ``--ads`` generated ads
(``gamead_cli.generate``, their own priorities 1-5) are published to the work stream as ``POST /ads`` publishes
them (encoded record, ``Nats-Msg-Id`` / ``Gamead-Ad-Id`` / ``Gamead-Record-Revision`` headers) after their records
were created in the ad bucket, as the API writes them (record first, acknowledged; then the message); then the
backlog is drained (burn-down, not steady state):

* **gamead**: one ``gamead worker`` process at the default concurrency (``worker.concurrency``, 4), real
  settings: aging-aware pulls, the record taken from the message (a worker of an older checkout reads it),
  the outcome's compare-and-set, ack, heartbeats. Timed from its
  first acknowledged ad (its start-up is not counted) to an empty work stream; its CPU (``/proc``) over the
  same window, per ad.
* **raw**: in this process, nats-py ``fetch(100)`` + ``ack`` on the same durable level consumers, most urgent
  level first, decoding each record and running gamead's own ``analyze()`` on it (no record writes).
* **raw + outcome write** (the protocol floor): the raw loop plus what gamead's promise needs per ad and nothing
  else: the completed record (gamead's own bytes) written as a compare-and-set over the revision the message
  names, the writes of one ``fetch`` published together, each ``ack`` only after its write was acknowledged.
  What it costs over raw is what persisting outcomes costs; what gamead costs over it is gamead's machinery
  (aging-aware pulls, the prefetch bound, heartbeats and held-ads announcements, a task per ad, the hooks).

Printed per round and as medians: ads/s of each, the ratio gamead / raw (target ≥ 0.8), the floor / raw and
gamead / floor, and CPU µs per ad of each. ``--profile PATH`` runs one more gamead round under cProfile (CPU
time) and prints its top functions. Every process is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Any

import nats

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_pipeline import Procs, gamead_env, proc_cpu_seconds  # noqa: E402

from gamead_cli.generate import generate_ads  # noqa: E402
from gamead_core import names  # noqa: E402
from gamead_core.ad_ids import new_ad_id  # noqa: E402
from gamead_core.config import GameadSettings  # noqa: E402
from gamead_core.embedded import EmbeddedNats  # noqa: E402
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow  # noqa: E402
from gamead_core.queue.acks import Ack, publish_many  # noqa: E402
from gamead_core.queue.publish import Outgoing, publish_ads  # noqa: E402
from gamead_core.queue.topology import ensure_topology  # noqa: E402
from gamead_core.store.ads import AdStore, decode, encode  # noqa: E402
from gamead_core.worker.analyzer import analyze  # noqa: E402
from gamead_core.worker.completed_json import completed_bytes  # noqa: E402


async def publish_backlog(url: str, n: int, seed: int) -> None:
    """``n`` ads into the ad bucket and the work stream, as the API's un-keyed submit path writes them
    (``Intake.submit_many``): the records created first (pipelined, acknowledged), then the messages with
    ``Gamead-Record-Revision`` naming each record's revision."""
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=10)
    await ensure_topology(js, GameadSettings())
    store = AdStore(nc, js, timeout=30)
    records = []
    for body in generate_ads(n, seed=seed):
        ad = AdSubmission.model_validate(body)
        records.append(AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=ad.priority, submitted_at=utcnow(),
                                ad=ad))
    for start in range(0, len(records), 1000):
        chunk = records[start:start + 1000]
        payloads = [encode(r) for r in chunk]
        revisions = await store.create_many(chunk, payloads)
        assert all(isinstance(r, int) for r in revisions), revisions[:3]
        results = await publish_ads(js, [Outgoing(r.id, r.priority, p, rev)  # type: ignore[arg-type]
                                         for r, p, rev in zip(chunk, payloads, revisions, strict=True)], timeout=30)
        assert all(not isinstance(r, Exception) for r in results), results[:3]
    await nc.flush()
    await nc.close()


async def backlog(js: Any) -> int:
    return int((await js.stream_info(names.ADS_STREAM)).state.messages)


async def drain_gamead(url: str, n: int, procs: Procs, profile: str | None,
                       code: str | None = None, env: dict[str, str] | None = None) -> dict[str, float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    argv = [sys.executable, "-P", "-m", "gamead_cli", "worker", "--id", "bench-drain"]
    if profile:  # cProfile on CPU time (process_time), not wall time: other processes' turns are not counted
        script = ("import cProfile, runpy, sys, time; sys.argv = ['gamead', 'worker', '--id', 'bench-drain']; "
                "p = cProfile.Profile(time.process_time); p.enable()\n"
                "try:\n    runpy.run_module('gamead_cli', run_name='__main__')\n"
                "except SystemExit:\n    pass\n"
                f"finally:\n    p.disable(); p.dump_stats({profile!r})")
        argv = [sys.executable, "-P", "-c", script]
    worker = procs.start("drain-worker", argv, gamead_env(url, **({"PYTHONPATH": code} if code else {}), **(env or {})))
    left = n
    while left >= n:  # start-up: not counted
        await asyncio.sleep(0.01)
        left = await backlog(js)
        assert worker.poll() is None, "the worker exited"
    t0, cpu0, start_left = time.monotonic(), proc_cpu_seconds(worker.pid) or 0.0, left
    while left:
        await asyncio.sleep(0.02)
        left = await backlog(js)
    t1, cpu1 = time.monotonic(), proc_cpu_seconds(worker.pid) or 0.0
    procs.stop(worker)
    await nc.close()
    done = start_left
    return {"rate": done / (t1 - t0), "cpu_us": (cpu1 - cpu0) / done * 1e6}


async def drain_levels(url: str, handle: Callable[[Any, list[Any]], Awaitable[None]]) -> dict[str, float]:
    """Fetch the backlog 100 at a time on the level consumers, most urgent level first, each until a fetch finds
    nothing, and again until the work stream is empty (under load a ``fetch`` can time out with ads left), giving
    each batch to ``handle(js, msgs)``. Its rate and this process's CPU per ad, timed from the first fetch."""
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=10)
    subs = {lvl: await js.pull_subscribe_bind(names.level_consumer(lvl), names.ADS_STREAM) for lvl in names.LEVELS}
    done = 0
    t0, cpu0 = time.monotonic(), time.process_time()
    while True:
        for lvl in names.LEVELS:
            while True:
                try:
                    msgs = await subs[lvl].fetch(100, timeout=0.05)
                except (nats.errors.TimeoutError, asyncio.TimeoutError):
                    break
                await handle(js, msgs)
                done += len(msgs)
        await nc.flush()
        if not await backlog(js):
            break
    t1, cpu1 = time.monotonic(), time.process_time()
    await nc.close()
    return {"rate": done / (t1 - t0), "cpu_us": (cpu1 - cpu0) / done * 1e6}


async def raw_batch(js: Any, msgs: list[Any]) -> None:
    """The raw loop's work on one fetch: each ad decoded and analysed, then acknowledged (no record writes)."""
    for msg in msgs:
        analyze(decode(msg.data).ad)
        await msg.ack()


def floor_batch(lean: bool) -> Callable[[Any, list[Any]], Awaitable[None]]:
    """The raw loop's work plus the one thing gamead's protocol adds per ad ("the protocol floor"): the completed
    record written as a compare-and-set over the revision the message names, and the ``ack`` only once that
    write is acknowledged. Per fetch, every ad decoded, analysed and its completed record built (gamead's own
    ``completed_bytes``), the batch's writes published together with ``Nats-Expected-Last-Subject-Sequence``,
    then the acks. ``lean``: the writes through gamead's ``publish_many`` (one reply subscription, one timer for
    the batch: the cheapest publish we have); else nats-py's own ``js.publish`` each, gathered. No heartbeats,
    no aging, no prefetch bound, no crash accounting: what a worker that persists outcomes cannot do without."""

    async def handle(js: Any, msgs: list[Any]) -> None:
        writes = []
        for msg in msgs:
            meta = msg.metadata
            record = decode(msg.data)
            started = record.model_copy(update={
                "status": AdStatus.PROCESSING, "started_at": utcnow(), "attempts": record.attempts + 1,
                "worker_id": "floor", "delivery": f"{meta.sequence.stream}.{meta.num_delivered}"})
            writes.append((names.kv_subject(names.ADS_BUCKET, record.id),
                           completed_bytes(started, utcnow(), analyze(record.ad)),
                           {names.HDR_EXPECTED_LAST_SUBJECT_SEQ: (msg.headers or {})[names.HDR_RECORD_REVISION]}))
        if lean:
            acks = await publish_many(js, writes, timeout=10)
            assert all(isinstance(a, Ack) for a in acks), acks[:3]
        else:
            await asyncio.gather(*(js.publish(subject, data, headers=headers) for subject, data, headers in writes))
        for msg in msgs:
            await msg.ack()

    return handle


#: the two protocol floors, by ``lean``
_FLOOR = {False: "nats-py js.publish", True: "gamead publish_many"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ads", type=int, default=10_000, help="backlog per round and contender")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", default=None, help="also profile one gamead round into this file")
    parser.add_argument("--code", default=None,
                        help="also drain with a worker from this source tree (PYTHONPATH), e.g. the code before")
    parser.add_argument("--prefetch", default=None,
                        help="also drain with the worker at each of these worker.prefetch values (comma list), "
                        "e.g. 0,4,8,16")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE[,NAME=VALUE]",
                        help="also drain with the worker under these settings (repeatable: one worker each), e.g. "
                        "--env GAMEAD_METRICS__ENABLED=false: what a part of the machinery costs")
    args = parser.parse_args()
    variants = [f"GAMEAD_WORKER__PREFETCH={v}" for v in args.prefetch.split(",")] if args.prefetch else []
    variants += args.env
    sweep: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "logs").mkdir()
        procs = Procs(root / "logs")
        server = EmbeddedNats(root / "nats").start()
        rows: list[tuple[dict[str, float], dict[str, float]]] = []
        other: list[dict[str, float]] = []
        floors: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        try:
            for r in range(args.rounds):
                asyncio.run(publish_backlog(server.url, args.ads, seed=r))
                g = asyncio.run(drain_gamead(server.url, args.ads, procs, None))
                asyncio.run(publish_backlog(server.url, args.ads, seed=100 + r))
                w = asyncio.run(drain_levels(server.url, raw_batch))
                rows.append((g, w))
                print(f"round {r + 1}: gamead worker {g['rate']:7.0f} ads/s ({g['cpu_us']:5.0f} µs CPU/ad)   "
                      f"raw fetch+ack+analyse {w['rate']:7.0f} ads/s ({w['cpu_us']:5.0f} µs CPU/ad)   "
                      f"ratio {g['rate'] / w['rate']:.2f}", flush=True)
                for lean, runs in floors.items():
                    asyncio.run(publish_backlog(server.url, args.ads, seed=400 + 10 * r + lean))
                    f = asyncio.run(drain_levels(server.url, floor_batch(lean)))
                    runs.append(f)
                    print(f"         raw + outcome write ({_FLOOR[lean]}) {f['rate']:7.0f} ads/s "
                          f"({f['cpu_us']:5.0f} µs CPU/ad): {f['rate'] / w['rate']:.2f}× raw; "
                          f"gamead {g['rate'] / f['rate']:.2f}× it", flush=True)
                if args.code:
                    asyncio.run(publish_backlog(server.url, args.ads, seed=200 + r))
                    o = asyncio.run(drain_gamead(server.url, args.ads, procs, None, args.code))
                    other.append(o)
                    print(f"         worker from {args.code}: {o['rate']:7.0f} ads/s ({o['cpu_us']:5.0f} µs CPU/ad)   "
                          f"ratio {o['rate'] / w['rate']:.2f}", flush=True)
                for k, v in enumerate(variants):
                    asyncio.run(publish_backlog(server.url, args.ads, seed=300 + 10 * r + k))
                    o = asyncio.run(drain_gamead(server.url, args.ads, procs, None, env=dict(
                        item.split("=", 1) for item in v.split(","))))
                    sweep[v].append(o)
                    print(f"         worker with {v}: {o['rate']:7.0f} ads/s ({o['cpu_us']:5.0f} µs CPU/ad)   "
                          f"ratio {o['rate'] / w['rate']:.2f}, {o['rate'] / g['rate']:.2f}× the default",
                          flush=True)
            if args.profile:
                asyncio.run(publish_backlog(server.url, args.ads, seed=999))
                asyncio.run(drain_gamead(server.url, args.ads, procs, args.profile))
        finally:
            procs.stop_all()
            server.stop()
    g_rate = statistics.median(g["rate"] for g, _ in rows)
    w_rate = statistics.median(w["rate"] for _, w in rows)
    print(f"median of {args.rounds} (burn-down of {args.ads:,} ads, one worker process at the default "
          f"concurrency, single ads):")
    print(f"  gamead worker          {g_rate:7.0f} ads/s, {statistics.median(g['cpu_us'] for g, _ in rows):5.0f} µs "
          "CPU per ad (worker process)")
    print(f"  raw fetch+ack+analyse  {w_rate:7.0f} ads/s, {statistics.median(w['cpu_us'] for _, w in rows):5.0f} µs "
          "CPU per ad (its process)")
    print(f"  ratio gamead / raw     {g_rate / w_rate:.2f}  (target ≥ 0.80)")
    for lean, runs in floors.items():  # what persisting each outcome before its ack costs with nothing else
        f_rate = statistics.median(f["rate"] for f in runs)
        print(f"  raw + outcome write, {_FLOOR[lean]}: {f_rate:7.0f} ads/s, "
              f"{statistics.median(f['cpu_us'] for f in runs):5.0f} µs CPU per ad (its process); "
              f"{f_rate / w_rate:.2f}× raw, gamead {g_rate / f_rate:.2f}× it")
    if other:
        o_rate = statistics.median(o["rate"] for o in other)
        print(f"  worker from {args.code}: {o_rate:7.0f} ads/s, {statistics.median(o['cpu_us'] for o in other):5.0f} "
              f"µs CPU per ad, ratio {o_rate / w_rate:.2f}")
    for v, runs in sweep.items():
        v_rate = statistics.median(o["rate"] for o in runs)
        print(f"  worker with {v}: {v_rate:7.0f} ads/s, {statistics.median(o['cpu_us'] for o in runs):5.0f} "
              f"µs CPU per ad, ratio {v_rate / w_rate:.2f}, {v_rate / g_rate:.2f}× the default")
    if args.profile:
        print(f"\nprofile of one gamead round ({args.profile}), top 30 by own time:")
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
