"""One worker process draining a backlog vs a raw nats-py fetch+ack loop running the same analyser, and vs that loop
with each outcome written before its ack: the protocol floor (issue 14).

Run from the repository root::

    .venv/bin/python benchmarks/bench_worker_drain.py                    # 10,000 ads, 3 rounds, medians
    .venv/bin/python benchmarks/bench_worker_drain.py --ads 3000 --rounds 1 --profile /tmp/worker.prof
    .venv/bin/python benchmarks/bench_worker_drain.py --ads 8000 --rounds 1 --cpu-profile /tmp/worker.stacks
    .venv/bin/python benchmarks/bench_worker_drain.py --code /tmp/main-src   # and a worker of another checkout
    .venv/bin/python benchmarks/bench_worker_drain.py --prefetch 0,4,8,16    # and the worker at each worker.prefetch
    .venv/bin/python benchmarks/bench_worker_drain.py --env GAMEAD_METRICS__ENABLED=false   # and under other settings
    .venv/bin/python benchmarks/bench_worker_drain.py --port 43101     # nats-server on a port given to you

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
  level first, decoding each record and running gamead's own ``analyze()`` on it (no record writes). Its rate
  counts its busy time: the fetches that found a level empty (each waits out 50 ms) are left out.
* **raw + outcome write** (the protocol floor), twice: the raw loop plus what gamead's promise needs per ad and
  nothing else: the completed record (the worker's bytes and headers: the compare-and-set over the revision the
  message names, the completed-record TTL) written before each ``ack``, one ``fetch``'s writes published
  together, through ``AdStore.update_many`` (the worker's own call) and through nats-py's ``js.publish``.
  What it costs over raw is what persisting outcomes costs; what gamead costs over it is gamead's machinery
  (aging-aware pulls, the prefetch bound, heartbeats and held-ads announcements, a task per ad, the hooks).
  It is serial (fetch, write, wait, ack) where the worker overlaps its settle rounds: a floor, not a bound.
* ``--code``, ``--prefetch``, ``--env``: more gamead workers (another checkout, other settings).

The contenders run one after another in each round, their order rotated from round to round (the ad bucket
grows with every drain). Printed per round: each contender's ads/s and CPU µs per ad (its process), × raw and
× the floor (``update_many``); then the medians of the rates and CPU, and of the rounds' own ratios (target:
the gamead worker ≥ 0.8× raw). ``--profile PATH`` runs one more gamead round under cProfile (CPU time) and prints
its top functions. Every process is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_pipeline import Procs, gamead_env, proc_cpu_seconds  # noqa: E402
from cpu_profile import sampler_env as cpu_profile_env  # noqa: E402
from cpu_profile import summary as cpu_profile_summary  # noqa: E402
from cpu_profile import toggle as toggle_sampler  # noqa: E402

from gamead_cli.generate import generate_ads  # noqa: E402
from gamead_core import names  # noqa: E402
from gamead_core.ad_ids import new_ad_id  # noqa: E402
from gamead_core.config import GameadSettings  # noqa: E402
from gamead_core.embedded import EmbeddedNats  # noqa: E402
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow  # noqa: E402
from gamead_core.queue.publish import Outgoing, publish_ads  # noqa: E402
from gamead_core.queue.topology import ensure_topology  # noqa: E402
from gamead_core.store.ads import AdStore, decode, encode, write_headers  # noqa: E402
from gamead_core.worker.analyzer import analyze  # noqa: E402
from gamead_core.worker.budget import delivery_id  # noqa: E402
from gamead_core.worker.completed_json import completed_bytes_of  # noqa: E402


def make_records(n: int, seed: int) -> list[AdRecord]:
    """``n`` queued records of generated ads (``gamead_cli.generate``, their own priorities 1-5), as ``POST /ads``
    makes them."""
    out = []
    for body in generate_ads(n, seed=seed):
        ad = AdSubmission.model_validate(body)
        out.append(AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=ad.priority, submitted_at=utcnow(),
                            ad=ad))
    return out


async def publish_records(js: Any, store: AdStore, records: list[AdRecord]) -> None:
    """``records`` written as the API's un-keyed submit path writes them (``Intake.submit_many``): each stamped
    ``submittedAt`` now, created first (pipelined, acknowledged), then their messages with
    ``Gamead-Record-Revision`` naming each record's revision. Raises RuntimeError if a write fails.

    The stamp is the API's, taken just before the create: a worker trusts a first delivery's body only if its
    message was stored within ``TRUSTED_WITHIN`` (10 s) of it (``gamead_core.worker.records.published_at_submit``)
    and reads the record otherwise. Stamped when made, the records of a large backlog (or a loaded hour's, or
    ``bench_worker_steady``'s trickle) were published more than 10 s later, and the worker drained them through
    its per-ad handler with a KV read each (speed40: a 30,000-ad drain at load 25, 3.56 messages in and 3.13 out
    per ad instead of 2.36 / 2.08, 46 % of the worker's CPU in the handler path)."""
    records = [r.model_copy(update={"submitted_at": utcnow()}) for r in records]  # each its own, as the API's
    payloads = [encode(r) for r in records]
    revisions = await store.create_many(records, payloads)
    if not all(isinstance(r, int) for r in revisions):
        raise RuntimeError(f"record creates failed, e.g. {revisions[:3]!r}")
    results = await publish_ads(js, [Outgoing(r.id, r.priority, p, rev)  # type: ignore[arg-type]
                                     for r, p, rev in zip(records, payloads, revisions, strict=True)], timeout=30)
    if any(isinstance(r, BaseException) for r in results):
        raise RuntimeError(f"publishes failed, e.g. {results[:3]!r}")


async def publish_backlog(url: str, n: int, seed: int) -> None:
    """``n`` ads (:func:`make_records`) into the ad bucket and the work stream, 1,000 at a time
    (:func:`publish_records`)."""
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=10)
    try:
        await ensure_topology(js, GameadSettings())
        store = AdStore(nc, js, timeout=30)
        records = make_records(n, seed)
        for start in range(0, len(records), 1000):
            await publish_records(js, store, records[start:start + 1000])
        await nc.flush()
    finally:
        await nc.close()


async def backlog(js: Any) -> int:
    return int((await js.stream_info(names.ADS_STREAM)).state.messages)


async def drain_gamead(url: str, n: int, procs: Procs, profile: str | None,
                       code: str | None = None, env: dict[str, str] | None = None,
                       cpu_profile: str | None = None) -> dict[str, float]:
    """One ``gamead worker`` draining the backlog of ``n`` ads: its rate and CPU per ad from its first acknowledged
    ad on. ``profile``: under cProfile into that file; ``cpu_profile``: CPU-time stacks sampled over the drain into
    that file (:mod:`cpu_profile`); ``code``: the worker's source tree; ``env``: more settings."""
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
    extra = cpu_profile_env(cpu_profile, code) if cpu_profile else ({"PYTHONPATH": code} if code else {})
    worker = procs.start("drain-worker", argv, gamead_env(url, **extra, **(env or {})))
    try:
        left = n
        deadline = time.monotonic() + STUCK_AFTER
        while left >= n:  # start-up: not counted
            await asyncio.sleep(0.01)
            left = await backlog(js)
            check_alive(worker, deadline, "started")
        t0, cpu0, start_left = time.monotonic(), proc_cpu_seconds(worker.pid) or 0.0, left
        if cpu_profile:
            toggle_sampler(worker.pid)  # on: the drain's window only
        await wait_drained(js, worker)
        t1, cpu1 = time.monotonic(), proc_cpu_seconds(worker.pid) or 0.0
        if cpu_profile:
            toggle_sampler(worker.pid)
    finally:
        procs.stop(worker)
        await nc.close()
    done = start_left
    return {"rate": done / (t1 - t0), "cpu_us": (cpu1 - cpu0) / done * 1e6}


async def wait_drained(js: Any, worker: Any, what: str = "drained an ad") -> None:
    """Until the work stream is empty (every ad published so far acknowledged), polled every 20 ms. Raises
    RuntimeError if ``worker`` (a Popen) exits, or no ad leaves the stream for :data:`STUCK_AFTER` s."""
    left = await backlog(js)
    deadline = time.monotonic() + STUCK_AFTER
    while left:
        await asyncio.sleep(0.02)
        before, left = left, await backlog(js)
        if left < before:
            deadline = time.monotonic() + STUCK_AFTER
        check_alive(worker, deadline, what)


def check_alive(worker: Any, deadline: float, what: str) -> None:
    """Raise RuntimeError if ``worker`` (a Popen) exited, or has not ``what`` by ``deadline`` (monotonic s)."""
    if worker.poll() is not None:
        raise RuntimeError(f"the worker exited (code {worker.returncode})")
    if time.monotonic() > deadline:
        raise RuntimeError(f"the worker has not {what} for {STUCK_AFTER:g} s")


Handle = Callable[[Any, AdStore, list[Any]], Awaitable[None]]  #: (its JetStream context, the ad store, a fetch)
#: seconds without a fetched ad after which a raw drain gives up (past the work stream's ack_wait, 30 s)
STUCK_AFTER = 45.0
#: the worker id the floor writes (the gamead contender's, so the records are the same size)
_WORKER_ID = "bench-drain"
#: the two protocol floors, by ``lean``
_FLOOR = {False: "nats-py js.publish", True: "gamead update_many"}
#: the contenders every ratio is taken against
RAW, FLOOR = "raw fetch+ack+analyse", f"raw + outcome write ({_FLOOR[True]})"


async def drain_levels(url: str, n: int, handle: Handle) -> dict[str, float]:
    """Fetch the backlog of ``n`` ads 100 at a time on the level consumers, most urgent level first, each until a
    fetch finds nothing, and again until all ``n`` were handled (under load a ``fetch`` can time out with ads
    left), giving each batch to ``handle(js, store, msgs)``. The rate is ``n`` over the busy time: the clock stops
    once the ``n``-th ad is handled, and the fetches that found nothing (each waits out its 50 ms) are not
    counted, as the gamead worker's ``no_wait`` pulls do not wait. CPU per ad: this process's over the same
    window. Raises when more than ``n`` ads come (a redelivery), when no fetch brings any for ``STUCK_AFTER``
    seconds (ack_wait, 30 s, would bring back an ad lost on the way), or the stream is not empty 10 s after."""
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=10)
    store = await AdStore.open(nc, js)  # the worker's store: its completed-record TTL included
    subs = {lvl: await js.pull_subscribe_bind(names.level_consumer(lvl), names.ADS_STREAM) for lvl in names.LEVELS}
    done, idle = 0, 0.0
    t0, cpu0 = time.monotonic(), time.process_time()
    progress = t0  #: when a fetch last brought ads
    while done < n:
        if time.monotonic() - progress > STUCK_AFTER:
            raise RuntimeError(f"no ad fetched for {STUCK_AFTER:g} s: {done} of {n} handled")
        for lvl in names.LEVELS:
            while done < n:
                asked = time.monotonic()
                try:
                    msgs = await subs[lvl].fetch(100, timeout=0.05)
                except (nats.errors.TimeoutError, asyncio.TimeoutError):
                    idle += time.monotonic() - asked
                    break
                await handle(js, store, msgs)
                done += len(msgs)
                progress = time.monotonic()
    await nc.flush()
    t1, cpu1 = time.monotonic(), time.process_time()
    if done != n:
        raise RuntimeError(f"handled {done} deliveries of {n} ads (a redelivery?)")
    deadline = time.monotonic() + 10
    while (left := await backlog(js)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if left:
        raise RuntimeError(f"{left} ads still in the work stream after the drain")
    await nc.close()
    return {"rate": n / (t1 - t0 - idle), "cpu_us": (cpu1 - cpu0) / n * 1e6}


async def raw_batch(js: Any, store: AdStore, msgs: list[Any]) -> None:
    """The raw loop's work on one fetch: each ad decoded and analysed, then acknowledged (no record writes)."""
    for msg in msgs:
        analyze(decode(msg.data).ad)
        await msg.ack()


def outcome(payload: bytes, delivery: str) -> tuple[str, bytes]:
    """A worker's CPU work for one ad beyond NATS: the work message's record decoded, its ad analysed and the
    completed record's bytes built as the batch start builds them (``completed_bytes_of``, from its start time: no
    ``processing`` record, drain46; before, ``started_record`` then ``completed_bytes``). Returns the ad id and
    those bytes."""
    record, began = decode(payload), utcnow()
    analysis = analyze(record.ad)
    return record.id, completed_bytes_of(record, delivery, _WORKER_ID, began, utcnow(), analysis)


def floor_batch(lean: bool) -> Handle:
    """The raw loop's work plus what gamead's promise needs per ad and nothing else ("the protocol floor"): the
    completed record written as a compare-and-set over the revision the message names, and the ``ack`` only once
    that write is acknowledged. Per fetch: every ad decoded, analysed, its completed record built as the worker
    builds it (``completed_bytes_of``), the batch's
    writes published together with the worker's headers (``write_headers``: the compare-and-set and the
    completed-record TTL), then the acks. ``lean``: through ``AdStore.update_many`` (the worker's own call: one
    reply subscription, one timer per batch); else nats-py's own ``js.publish`` each, gathered. Serial (fetch,
    write, wait, ack), where the worker overlaps its rounds; no heartbeats, aging, prefetch bound, crash
    accounting or hooks."""

    async def handle(js: Any, store: AdStore, msgs: list[Any]) -> None:
        writes = []
        for msg in msgs:
            meta = msg.metadata
            ad_id, data = outcome(msg.data, delivery_id(meta.sequence.stream, meta.num_delivered))
            writes.append((ad_id, data, int((msg.headers or {})[names.HDR_RECORD_REVISION])))
        if lean:
            results = await store.update_many(writes, final=True)
        else:
            results = await asyncio.gather(*(js.publish(
                names.kv_subject(names.ADS_BUCKET, ad_id), data, headers=write_headers(revision, store.final_ttl))
                for ad_id, data, revision in writes), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise RuntimeError(f"{len(failed)} outcome writes failed, e.g. {failed[0]!r}")
        for msg in msgs:
            await msg.ack()

    return handle


def env_items(text: str) -> dict[str, str]:
    """``NAME=VALUE[,NAME=VALUE…]`` → a dict, for ``--env`` (a value may hold ``=`` and ``,``: a comma splits only
    before the next ``NAME=``). Raises ``argparse.ArgumentTypeError`` for an item without ``=``."""
    items = {}
    for item in re.split(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*=)", text):
        name, sep, value = item.strip().partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise argparse.ArgumentTypeError(f"not NAME=VALUE: {item!r}")
        items[name] = value
    return items


def prefetch_items(text: str) -> list[dict[str, str]]:
    """``--prefetch 0,4,8`` → one environment per value (whole numbers; else ``argparse.ArgumentTypeError``)."""
    try:
        return [{"GAMEAD_WORKER__PREFETCH": str(int(v))} for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of whole numbers: {text!r}") from None


def _label(env: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in env.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--ads", type=int, default=10_000, help="backlog per round and contender")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", default=None, help="also profile one gamead round into this file")
    parser.add_argument("--cpu-profile", default=None, metavar="PATH",
                        help="also drain one more round with the worker's CPU time sampled (collapsed stacks into "
                        "PATH; benchmarks/cpu_profile.py): unlike py-spy's wall-clock samples, a worker waiting for a "
                        "core is not sampled")
    parser.add_argument("--code", default=None,
                        help="also drain with a worker from this source tree (PYTHONPATH), e.g. the code before")
    parser.add_argument("--prefetch", type=prefetch_items, default=[],
                        help="also drain with the worker at each of these worker.prefetch values (comma list), "
                        "e.g. 0,4,8,16")
    parser.add_argument("--env", type=env_items, action="append", default=[], metavar="NAME=VALUE[,NAME=VALUE]",
                        help="also drain with the worker under these settings (repeatable: one worker each), e.g. "
                        "--env GAMEAD_METRICS__ENABLED=false: what a part of the machinery costs")
    parser.add_argument("--port", type=int, default=0,
                        help="the nats-server's loopback port (0: a free one), e.g. inside a range given to you")
    args = parser.parse_args()
    variants = {_label(env): env for env in [*args.prefetch, *args.env]}  # one worker per distinct setting
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "logs").mkdir()
        procs = Procs(root / "logs")
        server = EmbeddedNats(root / "nats", port=args.port).start()
        # name → what it drains with; the order rotates every round (the bucket grows with every drain)
        contenders: dict[str, Callable[[], Awaitable[dict[str, float]]]] = {
            "gamead worker": lambda: drain_gamead(server.url, args.ads, procs, None),
            RAW: lambda: drain_levels(server.url, args.ads, raw_batch),
            FLOOR: lambda: drain_levels(server.url, args.ads, floor_batch(True)),
            f"raw + outcome write ({_FLOOR[False]})": lambda: drain_levels(server.url, args.ads, floor_batch(False)),
        }
        if args.code:
            contenders[f"worker from {args.code}"] = lambda: drain_gamead(server.url, args.ads, procs, None, args.code)
        for label, env in variants.items():
            contenders[f"worker with {label}"] = (
                lambda env=env: drain_gamead(server.url, args.ads, procs, None, env=env))  # type: ignore[misc]
        names_ = list(contenders)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in names_}
        try:
            for r in range(args.rounds):
                for k in range(len(names_)):
                    name = names_[(k + r) % len(names_)]
                    asyncio.run(publish_backlog(server.url, args.ads, seed=1000 * r + k))
                    runs[name].append(asyncio.run(contenders[name]()))
                _print_round(r, runs)
            if args.profile:
                asyncio.run(publish_backlog(server.url, args.ads, seed=999_999))
                asyncio.run(drain_gamead(server.url, args.ads, procs, args.profile))
            if args.cpu_profile:
                asyncio.run(publish_backlog(server.url, args.ads, seed=999_998))
                asyncio.run(drain_gamead(server.url, args.ads, procs, None, cpu_profile=args.cpu_profile))
        finally:
            procs.stop_all()
            server.stop()
    print(f"medians of {args.rounds} rounds (burn-down of {args.ads:,} ads, one worker process at the default "
          f"concurrency, single ads; each ratio is the median of the rounds' own ratios):")
    raw, floor = runs[RAW], runs[FLOOR]
    for name, results in runs.items():
        line = (f"  {name:<44} {statistics.median(x['rate'] for x in results):7.0f} ads/s, "
                f"{statistics.median(x['cpu_us'] for x in results):5.0f} µs CPU per ad")
        if results is not raw:
            line += f", {statistics.median(x['rate'] / w['rate'] for x, w in zip(results, raw)):.2f}× raw"
        if results is not raw and results is not floor:
            line += f", {statistics.median(x['rate'] / f['rate'] for x, f in zip(results, floor)):.2f}× the floor"
        print(line)
    print(f"  target: gamead worker ≥ 0.80× raw; the floor ({_FLOOR[True]}) is what persisting each outcome before "
          "its ack costs with nothing else")
    if args.cpu_profile:
        print(f"\nCPU-time profile of one gamead round ({args.cpu_profile}):")
        print(cpu_profile_summary(args.cpu_profile))
    if args.profile:
        print(f"\nprofile of one gamead round ({args.profile}), top 30 by own time:")
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(30)


def _print_round(r: int, runs: dict[str, list[dict[str, float]]]) -> None:
    raw, floor = runs[RAW][-1], runs[FLOOR][-1]
    print(f"round {r + 1}:", flush=True)
    for name, results in runs.items():
        x = results[-1]
        print(f"  {name:<44} {x['rate']:7.0f} ads/s ({x['cpu_us']:5.0f} µs CPU/ad)   "
              f"{x['rate'] / raw['rate']:.2f}× raw   {x['rate'] / floor['rate']:.2f}× the floor", flush=True)


if __name__ == "__main__":
    main()
