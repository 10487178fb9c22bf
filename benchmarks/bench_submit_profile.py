"""Where a single ``POST /ads`` spends its CPU (issue 14.4), against a plain FastAPI app validating the same body.

Run from the repository root::

    .venv/bin/python benchmarks/bench_submit_profile.py            # in-process, ~30 s
    .venv/bin/python benchmarks/bench_submit_profile.py --profile  # and the top functions (cProfile)
    .venv/bin/python benchmarks/bench_submit_profile.py --http     # over HTTP, both apps served by uvicorn, ~1 min

In-process (default): both apps are driven in this process through ASGI directly (no HTTP server, no sockets
to the client), on uvloop as ``gamead serve`` runs (``--loop asyncio`` for the stdlib loop), 64 requests in
flight, alternating rounds, same bodies (``gamead_cli.generate``). gamead's app runs its real lifespan on an
embedded ``nats-server`` (the publish and its ack are real). Printed: CPU µs per request of each (median of
rounds) and the ratio plain / gamead.

``--http``: the same comparison as a client sees it. One embedded ``nats-server`` and ``gamead serve`` (log
level WARNING, rate limit on but out of reach, as in ``bench_pipeline.py``), and the plain app under uvicorn with
the same loop and HTTP parser (uvloop, httptools, no access log). ``--rounds`` alternating pairs of closed-loop
phases from ``bench_batch.py``'s load generator (a process of its own, raw keep-alive HTTP/1.1, 64 connections,
1 s warm-up, ``--duration`` s measured). Printed per phase: requests answered 202 per second and the server's
CPU µs per request; then the ratio gamead / plain of the rates per round and its median (target ≥ 0.7).
``--code DIR`` (repeatable) adds a ``gamead serve`` run from another source tree (``PYTHONPATH``, e.g. an export of
``main``) to every round, so before and after are measured in the same run. ``--batch N`` (in-process): API CPU
per ad of ``POST /ads/batch`` with N ads a request instead, ``--profile`` for its top functions.
Every process started is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if "--http" not in sys.argv and "--code" in sys.argv[:-1]:  # in-process: gamead's code from another tree
    sys.path.insert(0, sys.argv[sys.argv.index("--code") + 1])

from fastapi import FastAPI, Request  # noqa: E402
from starlette.responses import Response  # noqa: E402

from gamead_cli.generate import generate_ads  # noqa: E402
from gamead_core.api.app import create_app  # noqa: E402
from gamead_core.config import load_settings  # noqa: E402
from gamead_core.embedded import EmbeddedNats  # noqa: E402
from gamead_core.models import AdSubmission  # noqa: E402


def plain_app() -> FastAPI:
    """The peer: FastAPI validating the body as gamead does (pydantic strict, JSON text) and answering 202."""
    app = FastAPI()

    @app.post("/ads", status_code=202)
    async def submit(request: Request) -> Response:
        AdSubmission.model_validate_json(await request.body(), strict=True)
        return Response(b'{"id":"x"}', status_code=202, media_type="application/json")

    @app.get("/readyz")
    async def readyz() -> Response:
        return Response(b"{}", media_type="application/json")

    return app


async def call(app: Any, body: bytes, path: str = "/ads") -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080)}
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def rounds(app: Any, bodies: list[bytes], n: int, inflight: int = 64) -> float:
    """CPU seconds per request over ``n`` requests, ``inflight`` at a time."""
    t = time.process_time()
    for k in range(0, n, inflight):
        statuses = await asyncio.gather(*(call(app, bodies[(k + i) % len(bodies)]) for i in range(inflight)))
        assert set(statuses) == {202}, statuses
    return (time.process_time() - t) / n


async def batch_rounds(app: Any, batches: list[bytes], n: int, size: int, inflight: int = 8) -> float:
    """CPU seconds per ad over ``n`` ads posted as ``POST /ads/batch`` of ``size``, ``inflight`` batches at a time."""
    t = time.process_time()
    for k in range(0, max(1, n // size), inflight):
        statuses = await asyncio.gather(*(call(app, batches[(k + i) % len(batches)], "/ads/batch")
                                          for i in range(inflight)))
        assert set(statuses) == {200}, statuses
    return (time.process_time() - t) / (max(1, n // size) // inflight * inflight * size or 1)


async def main_batch(args: argparse.Namespace) -> None:
    """``--batch N``: CPU per ad of ``POST /ads/batch`` (N ads a request, 8 in flight), in-process, and a profile."""
    ads = [json.dumps(a, separators=(",", ":")).encode() for a in generate_ads(2000, seed=5)]
    n = args.batch
    batches = [b'{"ads":[' + b",".join(ads[k:k + n]) + b"]}" for k in range(0, len(ads) - n + 1, n)]
    from bench_pipeline import scratch_dir, tune_like_serve  # noqa: PLC0415 - after the --code path is set
    server = EmbeddedNats(scratch_dir("gamead-bench-batch-")).start()
    try:
        gamead = create_app(load_settings(), server.url)
        tune_like_serve()
        async with gamead.router.lifespan_context(gamead):
            await asyncio.sleep(1.0)
            await batch_rounds(gamead, batches, 4 * n * 8, n)
            per = [await batch_rounds(gamead, batches, args.requests, n) for _ in range(args.rounds)]
            print(f"POST /ads/batch x{n}, API CPU per ad, median of {args.rounds} rounds x {args.requests:,} ads "
                  f"(ASGI, no HTTP server, {args.loop}, load average {load_average()}): "
                  f"{statistics.median(per) * 1e6:.1f} µs")
            if args.profile:
                prof = cProfile.Profile()
                prof.enable()
                await batch_rounds(gamead, batches, args.requests, n)
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(30)
                pstats.Stats(prof).sort_stats("cumulative").print_stats("gamead_core|json|pydantic", 40)
    finally:
        server.stop()


async def main(args: argparse.Namespace) -> None:
    bodies = [json.dumps(a).encode() for a in generate_ads(2000, seed=5)]
    from bench_pipeline import scratch_dir, tune_like_serve  # noqa: PLC0415 - after the --code path is set
    server = EmbeddedNats(scratch_dir("gamead-bench-submit-")).start()
    try:
        gamead = create_app(load_settings(), server.url)
        plain = plain_app()
        tune_like_serve()
        async with gamead.router.lifespan_context(gamead):
            await asyncio.sleep(1.0)
            await rounds(gamead, bodies, 1024)
            await rounds(plain, bodies, 1024)
            g, p = [], []
            for _ in range(args.rounds):
                g.append(await rounds(gamead, bodies, args.requests))
                p.append(await rounds(plain, bodies, args.requests))
            gm, pm = statistics.median(g) * 1e6, statistics.median(p) * 1e6
            print(f"CPU per request, median of {args.rounds} rounds x {args.requests:,} (ASGI, no HTTP server, "
                  f"{args.loop}, load average {load_average()}):")
            print(f"  plain FastAPI, validate the body and answer 202   {pm:7.1f} µs")
            print(f"  gamead POST /ads (gate, validate, publish + ack)   {gm:7.1f} µs")
            print(f"  ratio plain / gamead: {pm / gm:.2f} (gamead spends {gm - pm:.0f} µs more per request)")
            if args.profile:
                prof = cProfile.Profile()
                prof.enable()
                await rounds(gamead, bodies, args.requests)
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    finally:
        server.stop()


class PlainServer:
    """:func:`plain_app` under uvicorn, as ``gamead serve`` runs (uvloop, httptools, no access log)."""

    def __init__(self, procs: Any, nats_pid: int) -> None:
        from bench_pipeline import free_port  # noqa: PLC0415

        self.port = free_port()
        self.nats_pid = nats_pid
        self.proc = procs.start("plain-api", [
            sys.executable, "-m", "uvicorn", "--factory", "bench_submit_profile:plain_app", "--app-dir",
            str(Path(__file__).resolve().parent), "--host", "127.0.0.1", "--port", str(self.port), "--loop", "uvloop",
            "--http", "httptools", "--no-access-log", "--log-level", "warning", "--no-server-header"])
        import httpx  # noqa: PLC0415

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the plain app exited during start-up")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the plain app did not start")

    def pids(self) -> dict[str, int]:
        return {"api": self.proc.pid, "nats": self.nats_pid}


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main_http(args: argparse.Namespace) -> int:
    """Alternating closed-loop phases over HTTP against the plain app and ``gamead serve`` (module docstring)."""
    from bench_batch import CodeStack, phase  # noqa: PLC0415
    from bench_pipeline import Procs, Stack, scratch_dir  # noqa: PLC0415

    root = scratch_dir("gamead-bench-submit-http-")
    (root / "logs").mkdir()
    procs = Procs(root / "logs")
    rounds_out: list[dict[str, Any]] = []
    print(f"load average before: {load_average()}", flush=True)
    try:
        stack = Stack(procs, root, "submit").start()
        plain = PlainServer(procs, stack.pids()["nats"])
        others = [(code, CodeStack(procs, root, f"submit{k}", code).start()) for k, code in enumerate(args.code)]
        for r in range(args.rounds):
            p = phase(procs, plain, "single", args.connections, 1, args.duration)
            g = phase(procs, stack, "single", args.connections, 1, args.duration)
            ratio = g["adsPerSecond"] / max(1.0, p["adsPerSecond"])
            row: dict[str, Any] = {"plain": p, "gamead": g, "ratio": ratio, "loadAverage": load_average()}
            print(f"round {r + 1}: plain FastAPI {p['adsPerSecond']:7.0f} req/s ({p['apiCpuUsPerAd']:4.0f} µs CPU/req, "
                  f"{p['errors']} errors) | gamead POST /ads {g['adsPerSecond']:7.0f} req/s "
                  f"({g['apiCpuUsPerAd']:4.0f} µs API CPU/req, NATS {g['natsCpuUsPerAd']:3.0f} µs, {g['errors']} errors) "
                  f"| gamead / plain {ratio:.2f} | load average {load_average()}", flush=True)
            for code, other in others:
                o = phase(procs, other, "single", args.connections, 1, args.duration)
                row[code] = {**o, "ratio": o["adsPerSecond"] / max(1.0, p["adsPerSecond"])}
                print(f"         gamead from {code} {o['adsPerSecond']:7.0f} req/s ({o['apiCpuUsPerAd']:4.0f} µs API "
                      f"CPU/req, NATS {o['natsCpuUsPerAd']:3.0f} µs, {o['errors']} errors) | / plain "
                      f"{row[code]['ratio']:.2f} | load average {load_average()}", flush=True)
            rounds_out.append(row)
    finally:
        procs.stop_all()
    median = statistics.median(r["ratio"] for r in rounds_out)
    cpu = statistics.median(r["plain"]["apiCpuUsPerAd"] / max(1e-9, r["gamead"]["apiCpuUsPerAd"]) for r in rounds_out)
    verdict = "PASS" if median >= 0.7 else "MISS"
    print(f"POST /ads over HTTP, 202s per second, gamead / plain FastAPI, median of {len(rounds_out)} rounds: "
          f"{median:.2f} (target >= 0.7: {verdict}); server CPU per request, plain / gamead: {cpu:.2f}")
    for code in args.code:
        print(f"  gamead from {code}: median {statistics.median(r[code]['ratio'] for r in rounds_out):.2f}; server CPU "
              f"per request, plain / gamead: "
              f"{statistics.median(r['plain']['apiCpuUsPerAd'] / max(1e-9, r[code]['apiCpuUsPerAd']) for r in rounds_out):.2f}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (in-process 5, --http 3)")
    parser.add_argument("--requests", type=int, default=4096, help="requests per in-process round")
    parser.add_argument("--profile", action="store_true", help="in-process: cProfile a round of gamead's app")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="in-process: the event loop (gamead serve runs uvloop)")
    parser.add_argument("--batch", type=int, default=0, metavar="N",
                        help="in-process: POST /ads/batch of N ads instead (API CPU per ad)")
    parser.add_argument("--http", action="store_true", help="compare over HTTP, both apps under uvicorn")
    parser.add_argument("--duration", type=float, default=5.0, help="--http: measured seconds per phase")
    parser.add_argument("--connections", type=int, default=64, help="--http: keep-alive connections")
    parser.add_argument("--code", action="append", default=[], metavar="DIR",
                        help="--http: also measure gamead serve run from this source tree each round (repeatable); "
                        "in-process: run gamead's code from this tree (run twice, alternating, to compare)")
    parsed = parser.parse_args()
    if parsed.http:
        if "--rounds" not in sys.argv:
            parsed.rounds = 3
        raise SystemExit(main_http(parsed))
    if parsed.loop == "uvloop":
        import uvloop

        uvloop.install()
    asyncio.run(main_batch(parsed) if parsed.batch else main(parsed))
