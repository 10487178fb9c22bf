"""Batch submit (issue 14.3) against single submit, in the same run: ads accepted per second by one API.

Run from the repository root::

    .venv/bin/python benchmarks/bench_batch.py                 # ~1 minute
    .venv/bin/python benchmarks/bench_batch.py --rounds 1 --duration 3   # smoke run

One embedded ``nats-server`` and one ``gamead serve`` (log level WARNING, rate limit enabled but out of
reach, as in ``bench_pipeline.py``), no workers. Then ``--rounds`` alternating pairs of closed-loop phases
from a load generator in a process of its own (raw keep-alive HTTP/1.1, ``--duration`` s each after a 1 s
warm-up):

* **single**: ``--connections`` connections (64) each posting one ad (``POST /ads``) and waiting for its 202;
* **batch**: ``--batch-connections`` connections (8) each posting ``--batch-size`` ads (100) to
  ``POST /ads/batch`` and waiting for the answer; an ad counts once its result says ``queued``.

Printed per phase: ads accepted per second, API and NATS CPU µs per accepted ad; then the ratio
batch/single per round and its median (target ≥ 4×). Every figure is burn-in-free closed-loop capacity
(not a steady paced rate). Every process started is stopped by PID at the end.

``--code DIR`` (repeatable) adds a stack whose API runs from another source tree (``PYTHONPATH``, e.g. an
export of ``main``: ``git archive HEAD | tar -x -C DIR``); every round then runs the pair of phases against each
stack in turn, so the trees are compared in the same run under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_pipeline import (  # noqa: E402
    Procs, Stack, free_port, gamead_env, proc_cpu_seconds, read_response, scratch_dir,
)

from gamead_cli.generate import generate_ads  # noqa: E402

ACCEPTED = re.compile(rb'"accepted":(\d+)')


def request(host: str, port: int, path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def closed_loop(host: str, port: int, reqs: list[bytes], connections: int, warmup: float,
                      duration: float, batch: bool) -> dict[str, Any]:
    """Post ``reqs`` round-robin on ``connections`` keep-alive connections; count accepted ads in the window."""
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration
    accepted = 0
    errors = 0

    async def one(idx: int) -> None:
        nonlocal accepted, errors
        reader, writer = await asyncio.open_connection(host, port)
        i = idx * 7919
        try:
            while (t0 := time.perf_counter()) < stop_at:
                writer.write(reqs[i % len(reqs)])
                i += 1
                status, body = await read_response(reader)
                if t0 < measure_from:
                    continue
                if batch and status == 200 and (m := ACCEPTED.search(body[-64:])):
                    accepted += int(m.group(1))
                elif not batch and status == 202:
                    accepted += 1
                else:
                    errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(one(k) for k in range(connections)))
    return {"accepted": accepted, "errors": errors}


def loadgen(argv: list[str]) -> None:
    """Child role: ``_loadgen HOST PORT MODE CONNECTIONS BATCH WARMUP DURATION`` → JSON on stdout."""
    host, port, mode, conns, size, warmup, duration = argv
    try:
        import uvloop  # noqa: PLC0415

        uvloop.install()
    except ImportError:
        pass
    ads = [json.dumps(a, separators=(",", ":")).encode() for a in generate_ads(2000, seed=14)]
    if mode == "single":
        reqs = [request(host, int(port), "/ads", b) for b in ads]
    else:
        n = int(size)
        reqs = [request(host, int(port), "/ads/batch", b'{"ads":[' + b",".join(ads[k:k + n]) + b"]}")
                for k in range(0, len(ads) - n + 1, n)]
    out = asyncio.run(closed_loop(host, int(port), reqs, int(conns), float(warmup), float(duration),
                                  mode == "batch"))
    print(json.dumps(out))


class CodeStack(Stack):
    """A :class:`Stack` (NATS + one API) whose API runs from the source tree ``code`` when given."""

    def __init__(self, procs: Procs, root: Path, name: str, code: str | None = None) -> None:
        super().__init__(procs, root, name)
        self.code = code

    def start(self) -> CodeStack:
        if self.code is None:
            super().start()
            return self
        from gamead_core.embedded import EmbeddedNats  # noqa: PLC0415

        self.nats = EmbeddedNats(self.dir / "nats", pick_port=free_port).start()
        self.procs.items.append((f"{self.name}-nats", self.nats.proc))
        self.port = free_port()
        self.api = self.procs.start(  # -P: the working directory (this tree) is not put ahead of PYTHONPATH
            f"{self.name}-api", [sys.executable, "-P", "-m", "gamead_cli", "serve", "--port", str(self.port)],
            gamead_env(self.nats.url, PYTHONPATH=self.code))
        self._wait_ready()
        return self


def phase(procs: Procs, stack: Stack, mode: str, connections: int, size: int, duration: float) -> dict[str, float]:
    warmup = 1.0
    pids = stack.pids()
    gen = procs.start(f"loadgen-{mode}", [sys.executable, __file__, "_loadgen", "127.0.0.1", str(stack.port), mode,
                                          str(connections), str(size), str(warmup), str(duration)],
                      stdout=__import__("subprocess").PIPE)
    time.sleep(warmup)
    before = {k: proc_cpu_seconds(p) or 0.0 for k, p in pids.items()}
    out, _ = gen.communicate(timeout=warmup + duration + 60)
    after = {k: proc_cpu_seconds(p) or 0.0 for k, p in pids.items()}
    procs.items = [(n, p) for n, p in procs.items if p is not gen]
    result = json.loads(out)
    ads = max(1, result["accepted"])
    return {
        "adsPerSecond": result["accepted"] / duration,
        "errors": result["errors"],
        # the tail of the generator's run after the window is counted too: an upper bound, the same for both
        "apiCpuUsPerAd": (after["api"] - before["api"]) / ads * 1e6,
        "natsCpuUsPerAd": (after["nats"] - before["nats"]) / ads * 1e6,
    }


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_loadgen":
        loadgen(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=6.0, help="measured seconds per phase")
    parser.add_argument("--connections", type=int, default=64, help="connections of the single phase")
    parser.add_argument("--batch-connections", type=int, default=8, help="connections of the batch phase")
    parser.add_argument("--batch-size", type=int, default=100, help="ads per POST /ads/batch")
    parser.add_argument("--code", action="append", default=[], metavar="DIR",
                        help="also measure an API run from this source tree (repeatable)")
    parser.add_argument("--output", choices=("text", "json"), default="text")
    args = parser.parse_args()

    root = scratch_dir("gamead-bench-batch-")
    logdir = root / "logs"
    logdir.mkdir()
    procs = Procs(logdir)
    trees: list[str | None] = [None, *args.code]
    rounds: dict[str, list[dict[str, Any]]] = {tree or "this tree": [] for tree in trees}
    if args.output == "text":
        print(f"load average before: {load_average()}", flush=True)
    try:
        stacks = [CodeStack(procs, root, f"batch{k}", tree).start() for k, tree in enumerate(trees)]
        for r in range(args.rounds):
            for tree, stack in zip(trees, stacks, strict=True):
                single = phase(procs, stack, "single", args.connections, 1, args.duration)
                batch = phase(procs, stack, "batch", args.batch_connections, args.batch_size, args.duration)
                ratio = batch["adsPerSecond"] / max(1.0, single["adsPerSecond"])
                rounds[tree or "this tree"].append({"single": single, "batch": batch, "ratio": ratio,
                                                    "loadAverage": load_average()})
                if args.output == "text":
                    print(f"round {r + 1} [{tree or 'this tree'}]: POST /ads {single['adsPerSecond']:8.0f} ads/s "
                          f"(API {single['apiCpuUsPerAd']:4.0f} µs, NATS {single['natsCpuUsPerAd']:4.0f} µs CPU/ad, "
                          f"{single['errors']} errors) | POST /ads/batch x{args.batch_size} "
                          f"{batch['adsPerSecond']:8.0f} ads/s (API {batch['apiCpuUsPerAd']:4.0f} µs, NATS "
                          f"{batch['natsCpuUsPerAd']:4.0f} µs CPU/ad, {batch['errors']} errors) | ratio {ratio:.2f}x "
                          f"| load average {load_average()}", flush=True)
    finally:
        procs.stop_all()
    summary = {tree: {"medianRatio": statistics.median(r["ratio"] for r in rs),
                      "medianBatchApiCpuUsPerAd": statistics.median(r["batch"]["apiCpuUsPerAd"] for r in rs),
                      "medianSingleApiCpuUsPerAd": statistics.median(r["single"]["apiCpuUsPerAd"] for r in rs)}
               for tree, rs in rounds.items()}
    if args.output == "json":
        print(json.dumps({"rounds": rounds, "summary": summary}, indent=2))
    else:
        for tree, figures in summary.items():
            verdict = "PASS" if figures["medianRatio"] >= 4.0 else "MISS"
            print(f"[{tree}] batch / single, ads accepted per second, median of {args.rounds} rounds: "
                  f"{figures['medianRatio']:.2f}x (target >= 4x: {verdict}); API CPU per ad, median: batch "
                  f"{figures['medianBatchApiCpuUsPerAd']:.0f} µs, single {figures['medianSingleApiCpuUsPerAd']:.0f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
