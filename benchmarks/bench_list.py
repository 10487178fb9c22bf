"""``GET /ads?limit=500`` over a whole bucket: this tree against another (``--code DIR``), alternating in one run.

Run from the repository root::

    git archive e83dc32 | tar -x -C /tmp/old-e83dc32     # the tree to compare with (its one-pass read)
    .venv/bin/python benchmarks/bench_list.py --code /tmp/old-e83dc32                 # 10k and 40k, quiet + storm
    .venv/bin/python benchmarks/bench_list.py --records 40000 --rounds 5 --no-storm   # quiet only

One ``nats-server`` (loopback, ``--port-base``) and one ``gamead serve`` per tree on it (ports ``--port-base`` + 1,
+ 2, …; ``api.list_scan_limit`` = the largest ``--records``, so every read lists the whole bucket), no workers.
The bucket is filled straight through nats-py with completed records (~2.7 KB each, what a worker writes), up to
each ``--records`` figure in turn. Then:

* **quiet**: ``--rounds`` rounds, each timing one ``GET /ads?limit=--limit`` on every tree in turn (the order turns
  each round); printed: each read's seconds, each tree's median, and the ratio other tree / this tree (> 1: this
  tree is faster) per round and its median. A read that is not 200 (or misses records) is shown, not timed.
* **storm** (unless ``--no-storm``): a writer process rewrites every record of the bucket round and round, 256
  writes in flight, as fast as it can (``--storm-rate`` caps it), while ``--storm-reads`` reads per tree run, in
  turn; printed: how many answered 200 with every record counted (``total`` = the bucket's records, no id twice),
  how many 503 ``scan_incomplete``, their seconds, and the writer's rate.

Every process started is stopped by PID at the end (``Procs``); the scratch directory goes unless
``GAMEAD_BENCH_KEEP=1``. On demand, not a test: the figures depend on the machine and its load (printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_pipeline import Procs, gamead_env, log, scratch_dir, wait_answering  # noqa: E402

IN_FLIGHT = 256  #: the filler's and the writer's publishes awaiting their ack at once


def _records(count: int, first: int) -> list[tuple[str, bytes, bytes]]:
    """``count`` completed records (subject, value, a second value of the same ad: processing) of varied ads."""
    from gamead_cli.generate import generate_ads  # noqa: PLC0415
    from gamead_core import names  # noqa: PLC0415
    from gamead_core.ad_ids import new_ad_id  # noqa: PLC0415
    from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow  # noqa: PLC0415
    from gamead_core.store.ads import encode  # noqa: PLC0415
    from gamead_core.worker.analyzer import analyze  # noqa: PLC0415

    ads = [AdSubmission.model_validate(a) for a in generate_ads(500, seed=first)]
    analyses = [analyze(a) for a in ads]
    out = []
    for i in range(count):
        ad, now = ads[i % len(ads)], utcnow()
        done = AdRecord(id=new_ad_id(), status=AdStatus.COMPLETED, priority=ad.priority, submitted_at=now, ad=ad,
                        started_at=now, completed_at=now, attempts=1, worker_id="bench-w1",
                        analysis=analyses[i % len(ads)], delivery=f"{first + i + 1}.1")
        busy = done.model_copy(update={"status": AdStatus.PROCESSING, "analysis": None, "completed_at": None})
        out.append((names.kv_subject(names.ADS_BUCKET, done.id), encode(done), encode(busy)))
    return out


async def _publish_all(url: str, records: list[tuple[str, bytes, bytes]], value: int) -> None:
    import nats  # noqa: PLC0415

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for i in range(0, len(records), IN_FLIGHT):
            await asyncio.gather(*(js.publish(subject, values[value])
                                   for subject, *values in records[i:i + IN_FLIGHT]))
    finally:
        await nc.close()


def writer(argv: list[str]) -> None:
    """``_writer URL IDS_FILE RATE``: rewrite the records named in IDS_FILE (one subject a line) round and round,
    flipping completed ↔ processing, at most RATE writes/s (0: as fast as it can) until SIGTERM; print the writes
    and seconds as JSON on exit."""
    import signal  # noqa: PLC0415

    import nats  # noqa: PLC0415

    url, ids_file, rate = argv[0], argv[1], float(argv[2])
    subjects = Path(ids_file).read_text().split()
    stop = asyncio.Event()
    writes, started = 0, time.monotonic()

    async def run() -> None:
        nonlocal writes
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        nc = await nats.connect(url)
        js = nc.jetstream()
        records = _records(1, 7)  # one record's two values, given each id in turn
        bodies = [records[0][1], records[0][2]]
        flip = 0
        try:
            while not stop.is_set():
                for i in range(0, len(subjects), IN_FLIGHT):
                    if stop.is_set():
                        break
                    chunk = subjects[i:i + IN_FLIGHT]
                    await asyncio.gather(*(js.publish(s, _retarget(bodies[flip], s)) for s in chunk))
                    writes += len(chunk)
                    if rate > 0:
                        ahead = writes / rate - (time.monotonic() - started)
                        if ahead > 0:
                            await asyncio.sleep(ahead)
                flip = 1 - flip
        finally:
            await nc.close()

    asyncio.run(run())
    print(json.dumps({"writes": writes, "seconds": time.monotonic() - started}), flush=True)


def _retarget(body: bytes, subject: str) -> bytes:
    """The record ``body`` as the record of the ad its ``subject`` names (its id swapped in)."""
    record = json.loads(body)
    record["id"] = subject.rsplit(".", 1)[1]
    return json.dumps(record, separators=(",", ":")).encode()


def _get(url: str, limit: int) -> dict[str, Any]:
    import httpx  # noqa: PLC0415

    started = time.monotonic()
    try:
        answer = httpx.get(f"{url}/ads", params={"limit": limit}, timeout=300)
    except httpx.HTTPError as exc:
        return {"status": 0, "seconds": time.monotonic() - started, "error": repr(exc)}
    seconds = time.monotonic() - started
    body = answer.json()
    out: dict[str, Any] = {"status": answer.status_code, "seconds": seconds}
    if answer.status_code == 200:
        ids = [item["id"] for item in body["items"]]
        out.update(total=body["total"], scanned=body["scanned"], complete=body["complete"], count=len(ids),
                   twice=len(ids) - len(set(ids)))
    else:
        out["code"] = (body.get("error") or {}).get("code")
    return out


def _start_api(procs: Procs, nats_url: str, port: int, code: str | None, scan_limit: int, name: str) -> str:
    env = gamead_env(nats_url, GAMEAD_API__LIST_SCAN_LIMIT=str(scan_limit), **({"PYTHONPATH": code} if code else {}))
    argv = [sys.executable, "-P", "-m", "gamead_cli", "serve", "--port", str(port)] if code else \
        [sys.executable, "-m", "gamead_cli", "serve", "--port", str(port)]
    api = procs.start(name, argv, env)
    url = f"http://127.0.0.1:{port}"
    wait_answering(api, f"{url}/readyz", name, procs.logdir / f"{name}.log", 60.0)
    return url


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _line(tree: str, read: dict[str, Any]) -> str:
    if read["status"] != 200:
        return f"{tree}: {read['status']} {read.get('code') or read.get('error')} after {read['seconds']:.2f} s"
    return (f"{tree}: {read['seconds']:.2f} s (total {read['total']}, scanned {read['scanned']}, "
            f"complete {read['complete']}, {read['count']} items, {read['twice']} twice)")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_writer":
        writer(sys.argv[2:])
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", default="10000,40000", help="bucket sizes, in turn (10000,40000)")
    p.add_argument("--rounds", type=int, default=3, help="quiet reads per tree and size (3)")
    p.add_argument("--limit", type=int, default=500, help="GET /ads limit (500)")
    p.add_argument("--code", action="append", default=[], metavar="DIR", help="another source tree (repeatable)")
    p.add_argument("--no-storm", action="store_true", help="skip the storm case")
    p.add_argument("--storm-reads", type=int, default=5, help="reads per tree during the storm (5)")
    p.add_argument("--storm-rate", type=float, default=0, help="the writer's writes/s (0: as fast as it can)")
    p.add_argument("--port-base", type=int, default=29000, help="NATS here, the APIs on the next ports (29000)")
    p.add_argument("--output", choices=("table", "json"), default="table")
    args = p.parse_args()
    sizes = sorted(int(x) for x in args.records.split(","))
    trees: list[str | None] = [None, *args.code]
    names_ = ["this tree", *args.code]

    from gamead_core.embedded import EmbeddedNats  # noqa: PLC0415

    root = scratch_dir("gamead-bench-list-")
    (root / "logs").mkdir()
    procs = Procs(root / "logs")
    result: dict[str, Any] = {"loadBefore": _load(), "quiet": {}, "storm": {}}
    say = print if args.output == "table" else (lambda *a, **k: None)
    try:
        server = EmbeddedNats(root / "nats", port=args.port_base).start()
        procs.items.append(("nats", server.proc))
        urls = [_start_api(procs, server.url, args.port_base + 1 + k, tree, max(sizes), f"api{k}")
                for k, tree in enumerate(trees)]
        subjects: list[str] = []
        for size in sizes:
            log(f"filling the bucket to {size:,} records")
            more = _records(size - len(subjects), len(subjects))
            asyncio.run(_publish_all(server.url, more, 0))
            subjects += [s for s, *_ in more]
            for url in urls:
                _get(url, 1)  # warm-up: imports, connections
            rounds = []
            for r in range(args.rounds):
                order = list(range(len(trees)))[::1 if r % 2 == 0 else -1]
                reads = {names_[k]: _get(urls[k], args.limit) for k in order}
                rounds.append(reads)
                say(f"{size:,} records, round {r + 1}: " + " | ".join(_line(t, reads[t]) for t in names_)
                    + f" | load {_load()}", flush=True)
            result["quiet"][size] = _summary(rounds, names_, say, f"{size:,} records, quiet")
        if not args.no_storm:
            ids_file = root / "ids.txt"
            ids_file.write_text("\n".join(subjects))
            w = procs.start("writer", [sys.executable, __file__, "_writer", server.url, str(ids_file),
                                       str(args.storm_rate)], gamead_env(server.url), stdout=__import__(
                                           "subprocess").PIPE)
            time.sleep(2.0)
            rounds = []
            for r in range(args.storm_reads):
                order = list(range(len(trees)))[::1 if r % 2 == 0 else -1]
                reads = {names_[k]: _get(urls[k], args.limit) for k in order}
                rounds.append(reads)
                say(f"storm, {len(subjects):,} records, read {r + 1}: "
                    + " | ".join(_line(t, reads[t]) for t in names_) + f" | load {_load()}", flush=True)
            procs.stop(w)
            out = w.stdout.read() if w.stdout else b""
            wrote = json.loads(out or b'{"writes": 0, "seconds": 1}')
            rate = wrote["writes"] / max(1e-9, wrote["seconds"])
            storm = {t: _storm(rounds, t, len(subjects)) for t in names_}
            storm["writerRate"] = rate
            result["storm"] = storm
            for t in names_:
                s = storm[t]
                say(f"storm [{t}]: {s['whole']} of {len(rounds)} answered 200 with every record once, "
                    f"{s['scanIncomplete']} scan_incomplete, seconds {s['seconds']}")
            say(f"storm: the writer rewrote {rate:,.0f} records/s")
    finally:
        procs.stop_all()
    result["loadAfter"] = _load()
    if args.output == "json":
        print(json.dumps(result, indent=2))
    return 0


def _summary(rounds: list[dict[str, dict[str, Any]]], trees: list[str], say: Any, what: str) -> dict[str, Any]:
    """Each tree's median seconds over its 200 reads and, per other tree, the median of the per-round ratios
    other / this tree."""
    out: dict[str, Any] = {}
    for t in trees:
        ok = [r[t]["seconds"] for r in rounds if r[t]["status"] == 200]
        out[t] = {"median": statistics.median(ok) if ok else None, "seconds": [round(s, 2) for s in ok]}
    base = trees[0]
    for t in trees[1:]:
        ratios = [r[t]["seconds"] / r[base]["seconds"] for r in rounds
                  if r[t]["status"] == 200 and r[base]["status"] == 200]
        out[t]["ratioToThisTree"] = statistics.median(ratios) if ratios else None
        if ratios:
            say(f"{what}: [{t}] / [{base}] median of per-round ratios {statistics.median(ratios):.2f}x "
                f"({', '.join(f'{x:.2f}' for x in ratios)}); medians {out[t]['median']:.2f} s vs "
                f"{out[base]['median']:.2f} s")
    return out


def _storm(rounds: list[dict[str, dict[str, Any]]], tree: str, records: int) -> dict[str, Any]:
    reads = [r[tree] for r in rounds]
    whole = [x for x in reads if x["status"] == 200 and x["total"] == records and x["twice"] == 0]
    return {"whole": len(whole), "scanIncomplete": sum(x.get("code") == "scan_incomplete" for x in reads),
            "other": [x for x in reads if x["status"] not in (200, 503)],
            "seconds": [round(x["seconds"], 2) for x in reads]}


if __name__ == "__main__":
    raise SystemExit(main())
