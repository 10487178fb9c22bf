"""What observability costs: submit throughput and CPU per request of the API, and worker CPU per ad, with
Prometheus metrics off / on, and with metrics on plus OpenTelemetry tracing at 100 % sampling, in one run.

Each configuration gets a fresh stack (embedded nats-server, one ``gamead serve``; settings from the
environment only): a closed-loop POST phase (bench_pipeline's Python generator: 2 processes x 32 keep-alive
connections, warm-up then ``--duration`` s measured), then one worker (``--worker-concurrency``) drains the
backlog that phase left and its CPU per ad is read from /proc over the drain. Configurations are run in
rounds, interleaved (off, metrics, tracing, off, …), so that a noisy neighbour hits all of them alike; the
table shows the median of the rounds and each figure relative to "off".

Traces go to an OTLP/HTTP receiver in this process that accepts and drops them (the exporter's full cost is
paid; no collector is needed). Run on demand, never as a test:

    .venv/bin/python benchmarks/bench_observability.py              # 3 rounds, ~3 minutes
    .venv/bin/python benchmarks/bench_observability.py --rounds 1 --duration 4   # smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_pipeline as bp  # noqa: E402
import httpx  # noqa: E402

CONFIGS: dict[str, dict[str, str]] = {
    "off": {"GAMEAD_METRICS__ENABLED": "false"},
    "metrics": {"GAMEAD_METRICS__ENABLED": "true"},
    "metrics+tracing 100%": {"GAMEAD_METRICS__ENABLED": "true", "OTEL_TRACES_EXPORTER": "otlp",
                             "OTEL_TRACES_SAMPLER": "always_on", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
}


class Sink:
    """OTLP/HTTP receiver that answers 200 and drops what it gets; counts requests."""

    def __init__(self) -> None:
        self.requests = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.requests += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class EnvStack(bp.Stack):
    """bench_pipeline's Stack with extra environment for the API and its workers."""

    def __init__(self, procs: bp.Procs, root: Path, name: str, env: dict[str, str]) -> None:
        super().__init__(procs, root, name)
        self.extra = env

    def start(self) -> EnvStack:
        from gamead_core.embedded import EmbeddedNats

        self.nats = EmbeddedNats(self.dir / "nats").start()
        self.procs.items.append((f"{self.name}-nats", self.nats.proc))
        self.port = bp.free_port()
        self.api = self.procs.start(f"{self.name}-api",
                                    [sys.executable, "-m", "gamead_cli", "serve", "--port", str(self.port)],
                                    {**bp.gamead_env(self.nats.url), **self.extra})
        self._wait_ready()
        return self

    def start_worker(self, concurrency: int) -> Any:
        assert self.nats is not None
        w = self.procs.start(f"{self.name}-worker",
                             [sys.executable, "-m", "gamead_cli", "worker", "--id", "obs-w1", "--concurrency",
                              str(concurrency)], {**bp.gamead_env(self.nats.url), **self.extra})
        self.workers.append(w)
        return w


def hook_costs(n: int = 200_000) -> dict[str, float]:
    """Per-call cost (µs, this process) of what metrics add to the submit path: the HTTP middleware around a
    request that does nothing, and the ``gamead_ads_submitted_total`` increment. Deterministic next to the
    end-to-end figures, which a shared machine makes noisy."""
    import asyncio

    from gamead_core.telemetry.http import HttpMetrics
    from gamead_core.telemetry.metrics import ad_submitted

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["endpoint"] = app
        await send({"type": "http.response.start", "status": 202})

    async def send(message: Any) -> None:
        return None

    metered = HttpMetrics(app)
    metered._templates = {id(app): "/ads"}

    async def run(target: Any) -> float:
        t = time.perf_counter()
        for _ in range(n):
            await target({"type": "http", "method": "POST", "path": "/ads"}, None, send)
        return (time.perf_counter() - t) / n

    bare, timed = asyncio.run(run(app)), asyncio.run(run(metered))
    t = time.perf_counter()
    for _ in range(n):
        ad_submitted(3)
    counter = (time.perf_counter() - t) / n
    return {"http_middleware_us": round((timed - bare) * 1e6, 2), "submitted_counter_us": round(counter * 1e6, 2)}


def drain(stack: EnvStack, concurrency: int, timeout: float) -> dict[str, Any]:
    """Start one worker on the backlog; its CPU per ad over the drain (after it is registered)."""
    client = httpx.Client(base_url=stack.url, timeout=5)
    worker = stack.start_worker(concurrency)

    def node() -> dict[str, Any] | None:
        items = client.get("/v1/workers", params={"role": "worker"}).json()["items"]
        return items[0] if items else None

    deadline = time.monotonic() + 30
    while (first := node()) is None:
        if time.monotonic() > deadline or worker.poll() is not None:
            raise RuntimeError("the worker did not register")
        time.sleep(0.05)
    cpu0, p0, t0 = bp.proc_cpu_seconds(worker.pid), first["processed"], time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        q = client.get("/v1/stats", params={"history": 0}).json()["queue"]
        if q["pending"] == 0 and q["ackPending"] == 0:
            break
        time.sleep(0.2)
    cpu1, wall = bp.proc_cpu_seconds(worker.pid), time.monotonic() - t0
    time.sleep(1.2)  # one more heartbeat: the final processed count
    done = (node() or first)["processed"] - p0
    client.close()
    return {"ads": done, "seconds": round(wall, 2),
            "cpu_ms_per_ad": round((cpu1 - cpu0) / done * 1000, 3) if done and cpu0 is not None and cpu1 else None,
            "ads_per_s": round(done / wall, 1) if wall else None}


def one(procs: bp.Procs, root: Path, tmp: Path, cfg: Any, name: str, env: dict[str, str], k: int,
        concurrency: int, drain_timeout: float) -> dict[str, Any]:
    slug = f"{name.split('+')[0].split(' ')[0]}{'-t' if 'tracing' in name else ''}-{k}"
    stack = EnvStack(procs, root, slug, env).start()
    try:
        post = bp.post_throughput_python(procs, stack, tmp, cfg)
        work = drain(stack, concurrency, drain_timeout)
    finally:
        stack.stop()
    return {"accepted_rps": post["accepted_rps"], "api_cpu_us_per_request": post["cpu_us_per_request"]["api"],
            "post_p99_ms": post["latency_ms"].get("p99"), "errors": post["errors"], **work}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the three configurations (3)")
    p.add_argument("--duration", type=float, default=6.0, help="measured seconds of each POST phase (6)")
    p.add_argument("--warmup", type=float, default=1.5, help="warm-up seconds before it (1.5)")
    p.add_argument("--worker-concurrency", type=int, default=16, help="--concurrency of the draining worker (16)")
    p.add_argument("--drain-timeout", type=float, default=120.0, help="longest drain (120 s)")
    p.add_argument("--output", choices=("table", "json"), default="table")
    a = p.parse_args(argv)
    cfg, _ = bp.parse_args(["--loadgen", "python", "--duration", str(a.duration), "--warmup", str(a.warmup)])
    sink = Sink()
    CONFIGS["metrics+tracing 100%"]["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.url
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="gamead-bench-obs-") as tmp_s:
        tmp = Path(tmp_s)
        procs = bp.Procs(tmp)
        bp.write_bodies(tmp / "bodies.json", 2000, seed=7)
        try:
            for k in range(a.rounds):
                for name, env in CONFIGS.items():
                    bp.log(f"round {k + 1}/{a.rounds}: {name}")
                    results[name].append(one(procs, tmp / "stacks", tmp, cfg, name, env, k, a.worker_concurrency,
                                             a.drain_timeout))
        finally:
            procs.stop_all()
    summary = summarise(results)
    summary["otlp_requests_received"] = sink.requests
    summary["hooks"] = hook_costs()
    if a.output == "json":
        print(json.dumps({"summary": summary, "rounds": results}, indent=2))
    else:
        print_table(summary, a)
    return 0


def _median(values: list[Any]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def summarise(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    keys = ("accepted_rps", "api_cpu_us_per_request", "post_p99_ms", "cpu_ms_per_ad", "ads_per_s")
    med = {name: {k: _median([r[k] for r in runs]) for k in keys} for name, runs in results.items()}
    base = med["off"]
    for name, m in med.items():
        m["vs_off_pct"] = {k: (round((m[k] / base[k] - 1) * 100, 1) if m[k] is not None and base[k] else None)
                           for k in keys}
    return med


def print_table(summary: dict[str, Any], a: argparse.Namespace) -> None:
    rows = [("accepted_rps", "POST /ads accepted (202) per s"), ("api_cpu_us_per_request", "API CPU µs per request"),
            ("post_p99_ms", "POST latency p99 ms (closed loop)"), ("cpu_ms_per_ad", "worker CPU ms per ad"),
            ("ads_per_s", "worker ads per s (one worker)")]
    names = [n for n in CONFIGS]
    print(f"\nObservability cost: median of {a.rounds} interleaved round(s); in brackets: change vs off\n")
    print(f"{'figure':<36}" + "".join(f"{n:>26}" for n in names))
    for key, label in rows:
        cells = []
        for n in names:
            v, d = summary[n][key], summary[n]["vs_off_pct"][key]
            cells.append(f"{'-' if v is None else v:>16} ({'' if d is None or n == 'off' else f'{d:+.1f}%'})"
                         if n != "off" else f"{'-' if v is None else v:>26}")
        print(f"{label:<36}" + "".join(f"{c:>26}" for c in cells))
    print(f"\nOTLP export requests received by the sink: {summary['otlp_requests_received']}")
    h = summary["hooks"]
    print(f"metrics on the submit path, per request (this process): HTTP middleware +{h['http_middleware_us']} µs, "
          f"submitted counter +{h['submitted_counter_us']} µs")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        bp.child_main(sys.argv[1:])
    else:
        sys.exit(main(sys.argv[1:]))
