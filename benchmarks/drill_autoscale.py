"""Autoscaling drill: a burst of ads against ``gamead up`` on the local backend, and how the pool follows.

A benchmark, not a test. It starts ``gamead up --workers 1`` (the autoscaler on, local backend) in a temp
directory with ``GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS=50`` (every analysis waits 50 ms, like I/O), sends a
burst of 5,000 ads as fast as the API takes them, and samples every 0.5 s:

* ``GET /v1/scale`` — the autoscaler's current/desired count and its decisions (with their times);
* the queue, straight from JetStream (``consumer_info`` per level: waiting + in flight);
* the live ``gamead worker`` processes under ``gamead up`` (from ``/proc``).

It prints: time from the first ad to the first scale-up decision, peak workers, time until every ad was
done (queue empty, nothing in flight), and time until the pool was back at ``--workers``. The scale-down
stabilisation window is shortened for the drill (``--stabilization``, default 30 s instead of 300 s) so
it ends in a minute or two; everything else is the default configuration (interval 5 s, 4 slots a worker).

    .venv/bin/python benchmarks/drill_autoscale.py                 # the drill (~1.5-2 min)
    .venv/bin/python benchmarks/drill_autoscale.py --ads 1000 --stabilization 10   # a quicker look
    .venv/bin/python benchmarks/drill_autoscale.py --output json > drill.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gamead_cli.generate import generate_ads  # noqa: E402
from gamead_core import names  # noqa: E402
from gamead_core.embedded import free_port  # noqa: E402


@dataclass
class Point:
    t: float  #: seconds since the first ad was sent
    current: int | None
    desired: int | None
    processes: int
    waiting: int | None
    in_flight: int | None


@dataclass
class Result:
    ads: int
    accepted: int
    rejected: dict[str, int]
    send_seconds: float
    first_scale_up_s: float | None
    first_scale_up_reason: str | None
    peak_workers: int
    peak_processes: int
    drained_s: float | None
    scaled_down_s: float | None
    command: str
    env: dict[str, str]
    decisions: list[dict[str, Any]] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)


def _epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else None


def _worker_processes(parent: int) -> int:
    n = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != parent:
                continue
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if b"worker" in argv:
            n += 1
    return n


async def _queue_depth(js: Any) -> tuple[int, int]:
    infos = await asyncio.gather(*(js.consumer_info(names.ADS_STREAM, names.level_consumer(lvl))
                                   for lvl in names.LEVELS))
    return sum(int(i.num_pending or 0) for i in infos), sum(int(i.num_ack_pending or 0) for i in infos)


async def _sample(api: str, nats_url: str, token: str | None, up_pid: int, t0: list[float],
                  stop: asyncio.Event, points: list[Point], last_doc: dict[str, Any]) -> None:
    import nats

    nc = await nats.connect(nats_url, token=token)
    js = nc.jetstream()
    async with httpx.AsyncClient(base_url=api, timeout=5) as client:
        while not stop.is_set():
            began = time.monotonic()
            try:
                doc = (await client.get("/v1/scale")).json()
                last_doc.clear()
                last_doc.update(doc)
            except (httpx.HTTPError, ValueError):
                doc = {}
            try:
                waiting, in_flight = await _queue_depth(js)
            except Exception:  # noqa: BLE001 - a missed sample
                waiting = in_flight = None
            if t0:
                points.append(Point(round(time.time() - t0[0], 2), doc.get("current"), doc.get("desired"),
                                    _worker_processes(up_pid), waiting, in_flight))
            await asyncio.sleep(max(0.0, 0.5 - (time.monotonic() - began)))
    await nc.close()


async def _read_status(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response with a Content-Length body (what uvicorn sends); return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    low = head.lower()
    i = low.find(b"content-length:")
    if i >= 0:
        n = int(low[i + 15 : low.find(b"\r\n", i)])
        if n:
            await reader.readexactly(n)
    return int(head[9:12])


async def _burst(port: int, ads: list[dict[str, Any]], connections: int) -> tuple[int, dict[str, int]]:
    """POST every ad as fast as the API answers: ``connections`` keep-alive connections, raw HTTP/1.1
    (an HTTP client library in this process would be slower than the API it is meant to load)."""
    requests = []
    for ad in ads:
        body = json.dumps(ad).encode()
        requests.append(f"POST /ads HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    accepted = 0
    rejected: dict[str, int] = {}
    todo = iter(requests)

    async def sender() -> None:
        nonlocal accepted
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in todo:
                try:
                    writer.write(request)
                    code = str(await _read_status(reader))
                except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
                    code = type(exc).__name__
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                if code == "202":
                    accepted += 1
                else:
                    rejected[code] = rejected.get(code, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(sender() for _ in range(connections)))
    return accepted, rejected


async def drill(args: argparse.Namespace, log: Any) -> Result:
    tmp = Path(tempfile.mkdtemp(prefix="gamead-drill-"))
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMEAD_")}
    drill_env = {
        "GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS": str(args.latency_ms),
        "GAMEAD_AUTOSCALER__SCALE_DOWN_STABILIZATION_SECONDS": str(args.stabilization),
        "GAMEAD_LOG__LEVEL": "WARNING",
    }
    if args.interval is not None:
        drill_env["GAMEAD_AUTOSCALER__INTERVAL"] = str(args.interval)
    env.update(drill_env)
    argv = [sys.executable, "-m", "gamead_cli", "up", "--workers", str(args.workers), "--port", str(port),
            "--data-dir", str(tmp / "data")]
    if args.max_workers is not None:
        argv += ["--max-workers", str(args.max_workers)]
    out_path = tmp / "up.out"
    command = " ".join(f"{k}={v}" for k, v in drill_env.items()) + " gamead " + " ".join(argv[3:])
    log(f"$ {command}")
    with open(out_path, "wb") as out:
        up = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
                              start_new_session=True)
    points: list[Point] = []
    last_doc: dict[str, Any] = {}
    t0: list[float] = []
    stop = asyncio.Event()
    try:
        deadline = time.monotonic() + 60
        while "Press Ctrl-C" not in out_path.read_text(errors="replace"):
            if up.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gamead up did not start:\n{out_path.read_text(errors='replace')[-3000:]}")
            await asyncio.sleep(0.1)
        nats_url = re.search(r"(nats://[\d.]+:\d+)", out_path.read_text()).group(1)  # type: ignore[union-attr]
        # gamead up's nats-server requires this stack's own token (written to config-in-force.yaml for its
        # children): without it every connect was 'Authorization Violation' and the drill failed (newcomer45)
        token = (yaml.safe_load((tmp / "data" / "config-in-force.yaml").read_text()) or {}).get("nats", {}).get("token")
        sampler = asyncio.create_task(_sample(api, nats_url, token, up.pid, t0, stop, points, last_doc))
        await asyncio.sleep(args.settle)  # a few quiet decisions first (the policy's history starts here)
        ads = list(generate_ads(args.ads, seed=7))
        log(f"sending {args.ads:,} ads …")
        t0.append(time.time())
        accepted, rejected = await _burst(port, ads, args.connections)
        send_s = time.time() - t0[0]
        log(f"sent in {send_s:.1f}s: {accepted:,} accepted, rejected {rejected or 0}")

        drained_s = scaled_down_s = None
        end = time.monotonic() + args.timeout
        while time.monotonic() < end:
            await asyncio.sleep(0.5)
            if sampler.done():  # it failed (NATS refused it): say so now, not after --timeout of empty samples
                await sampler
            recent = [p for p in points if p.t > send_s]
            if drained_s is None:
                done = next((p for p in recent if p.waiting == 0 and p.in_flight == 0), None)
                if done is not None:
                    drained_s = done.t
                    log(f"drained at +{drained_s:.1f}s")
            if drained_s is not None:
                back = next((p for p in points if p.t > drained_s and p.current == args.workers
                             and p.processes == args.workers), None)
                peak = max((p.current or 0) for p in points)
                if back is not None and peak > args.workers:
                    scaled_down_s = back.t
                    log(f"back to {args.workers} worker(s) at +{scaled_down_s:.1f}s")
                    break
                if back is not None and peak <= args.workers and time.monotonic() > end - args.timeout + 5:
                    break
        stop.set()
        await sampler
    finally:
        stop.set()
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp}")

    decisions = list(reversed(last_doc.get("decisions") or []))  # oldest first
    first_up = next((d for d in decisions if (_epoch(d.get("at")) or 0) >= t0[0]
                     and (d.get("desired") or 0) > (d.get("current") or 0) and d.get("applied")), None)
    return Result(
        ads=args.ads,
        accepted=accepted,
        rejected=rejected,
        send_seconds=round(send_s, 2),
        first_scale_up_s=round(_epoch(first_up["at"]) - t0[0], 2) if first_up else None,  # type: ignore[operator]
        first_scale_up_reason=first_up.get("reason") if first_up else None,
        peak_workers=max((p.current or 0) for p in points) if points else 0,
        peak_processes=max((p.processes for p in points), default=0),
        drained_s=drained_s,
        scaled_down_s=scaled_down_s,
        command=command,
        env=drill_env,
        decisions=decisions,
        points=points,
    )


def _report(r: Result) -> str:
    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} s"

    lines = [
        f"burst: {r.ads:,} ads, {r.accepted:,} accepted in {r.send_seconds:.1f} s"
        + (f", rejected {r.rejected}" if r.rejected else ""),
        f"time to first scale-up:    {s(r.first_scale_up_s)}   ({r.first_scale_up_reason or '-'})",
        f"peak workers:              {r.peak_workers} (worker processes seen: {r.peak_processes})",
        f"time to drain:             {s(r.drained_s)}",
        f"time to scale back down:   {s(r.scaled_down_s)}",
        "",
        "decisions (oldest first):",
    ]
    for d in r.decisions:
        lines.append(f"  {d.get('at', '')[11:23]} ×{d.get('repeats', 1):<3} {d.get('current')}→{d.get('desired')} "
                     f"{'applied' if d.get('applied') else 'NOT applied'}: {d.get('reason')}")
    lines.append("")
    lines.append("timeline (t s: autoscaler current/desired, worker processes, waiting+in flight):")
    step = max(1, len(r.points) // 40)
    for p in r.points[::step]:
        lines.append(f"  {p.t:7.1f}  {p.current}/{p.desired}  procs {p.processes}  queue {p.waiting}+{p.in_flight}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ads", type=int, default=5000)
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1, help="gamead up --workers (the minimum)")
    ap.add_argument("--max-workers", type=int, default=None, help="gamead up --max-workers (default max(4, N))")
    ap.add_argument("--stabilization", type=float, default=30.0, help="scale-down window for the drill (s)")
    ap.add_argument("--interval", type=float, default=None, help="autoscaler interval (default: config, 5 s)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--settle", type=float, default=6.0, help="quiet seconds before the burst")
    ap.add_argument("--timeout", type=float, default=240.0, help="most seconds to wait after the burst")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    ap.add_argument("--output", choices=["text", "json"], default="text")
    args = ap.parse_args()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def on_term(signum: int, frame: Any) -> None:  # as Ctrl-C: drill's finally stops its gamead up (a session of
        raise KeyboardInterrupt  # its own: never signalled with us); before, SIGTERM left that stack running

    signal.signal(signal.SIGTERM, on_term)
    try:
        result = asyncio.run(drill(args, log))
    except KeyboardInterrupt:
        log("interrupted: its gamead up was stopped")
        sys.exit(130)
    if args.output == "json":
        print(json.dumps(asdict(result), indent=2))
    else:
        print(_report(result))


if __name__ == "__main__":
    threading.current_thread().name = "drill"
    main()
