"""Deterministic counts per ad of a ``gamead up``-like stack (perf41): what each role does per ad, not how long.

Run from the repository root, once per source tree to compare (``--code``: the roles' ``PYTHONPATH``)::

    .venv/bin/python benchmarks/bench_counts.py --code /tmp/old-tree --out /tmp/old.json
    .venv/bin/python benchmarks/bench_counts.py --out /tmp/new.json
    .venv/bin/python benchmarks/bench_counts.py --diff /tmp/old.json /tmp/new.json     # per-ad differences

The stack: an embedded ``nats-server`` (with ``/varz``), one ``gamead serve`` and ``--workers`` (2) ``gamead
worker`` processes at default settings, each role started with ``count_site/sitecustomize.py``. After a warm-up,
``--ads`` (5,000) ads are submitted at ``--rate`` (250) ads/s, one ``POST /ads`` each, open loop (the paced
generator of ``bench_pipeline.py``), and the run waits until the work stream is empty. Over that window, per
accepted ad:

* every NATS message routed, by class (``msg_tap.py`` in its own process, subscribed to ``>``): pulls,
  deliveries, acks, KV writes, JetStream API calls, publish acks…;
* every function call of each role's event-loop thread (cProfile call counts: Python and C functions);
* log lines each role wrote;
* each role's resident set and loaded modules before and after (with ``--tracemalloc``, the traced bytes by
  source file too: the run is slower).

Steady state, single submits. Counts that depend on timing (how many ads share a batch, a poll, a linger) move a
little between runs; calls that happen once per ad do not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_idle import paced_child, start_tap, stop_tap  # noqa: E402
from bench_pipeline import Procs, free_port, gamead_env, scratch_dir, wait_answering, write_bodies  # noqa: E402

SITE = HERE / "count_site"


async def _backlog(url: str, timeout: float) -> int:
    import nats  # noqa: PLC0415

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout
        while True:
            left = int((await js.stream_info("GAMEAD_ADS")).state.messages)
            if not left or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def run(a: argparse.Namespace) -> dict[str, Any]:
    from gamead_core.embedded import EmbeddedNats  # noqa: PLC0415

    root = scratch_dir("gamead-bench-counts-")
    (root / "logs").mkdir()
    procs = Procs(root / "logs")
    nats_server = EmbeddedNats(root / "nats", pick_port=free_port)
    argv = nats_server.prepare()
    tap = None
    roles: dict[str, Any] = {}
    try:
        nproc = procs.start("nats", [*argv, "-m", str(free_port())])
        nats_server.wait_ready(nproc)
        code = str(Path(a.code).resolve()) if a.code else str(HERE.parent)

        def env(role: str) -> dict[str, str]:
            extra = {"PYTHONPATH": f"{SITE}{os.pathsep}{code}", "BENCH_COUNT_OUT": str(root / f"{role}.json")}
            if a.tracemalloc:
                extra["PYTHONTRACEMALLOC"] = "1"
            return gamead_env(nats_server.url, **extra)

        port = free_port()
        roles["api"] = procs.start("api", [sys.executable, "-P", "-m", "gamead_cli", "serve", "--port", str(port)],
                                   env("api"))
        wait_answering(roles["api"], f"http://127.0.0.1:{port}/readyz", "API", root / "logs" / "api.log", 60)
        for k in range(a.workers):
            roles[f"worker{k + 1}"] = procs.start(
                f"worker{k + 1}", [sys.executable, "-P", "-m", "gamead_cli", "worker", "--id", f"bench-w{k + 1}"],
                env(f"worker{k + 1}"))
        time.sleep(3.0)  # workers connected and pulling
        bodies = root / "bodies.json"
        write_bodies(bodies, 2000, seed=7)
        paced_child(port, a.rate, 2.0, bodies, root / "warm.json")
        asyncio.run(_backlog(nats_server.url, 30))
        tap = start_tap(nats_server.url, root / "tap.json", a.tap)
        lines0 = {r: _lines(root / "logs" / f"{r}.log") for r in roles}
        for p in roles.values():
            os.kill(p.pid, signal.SIGUSR2)
        time.sleep(0.5)
        accepted = paced_child(port, a.rate, a.ads / a.rate, bodies, root / "paced.json")
        left = asyncio.run(_backlog(nats_server.url, 60))
        time.sleep(0.5)  # the last records written after the last ack, the pull loops settled
        for p in roles.values():
            os.kill(p.pid, signal.SIGUSR2)
        counts = stop_tap(tap, root / "tap.json")
        tap = None
        lines1 = {r: _lines(root / "logs" / f"{r}.log") for r in roles}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all((root / f"{r}.json").exists() for r in roles):
            time.sleep(0.1)
        out: dict[str, Any] = {"code": code, "rate": a.rate, "accepted": accepted, "left_in_stream": left,
                               "messages": counts, "roles": {}}
        for r in roles:
            d = json.loads((root / f"{r}.json").read_text())
            out["roles"][r] = {"calls": d["calls"], "callers": d.get("callers", {}), "marks": d["marks"],
                               "log_lines": lines1[r] - lines0[r]}
        return out
    finally:
        if tap is not None:
            tap.kill()
            tap.wait()
        procs.stop_all()
        if not os.environ.get("GAMEAD_BENCH_KEEP"):
            import shutil  # noqa: PLC0415

            shutil.rmtree(root, ignore_errors=True)


def per_ad(d: dict[str, Any]) -> dict[str, Any]:
    """The run ``d`` per accepted ad: messages by class, calls by role and function, log lines, RSS and modules."""
    n = max(1, d["accepted"])
    out: dict[str, Any] = {"messages": {k: v / n for k, v in d["messages"].items()},
                           "messages_total": sum(d["messages"].values()) / n, "roles": {}}
    for role, r in d["roles"].items():
        first, last = r["marks"][0], r["marks"][-1]
        out["roles"][role] = {
            "calls": {k: v / n for k, v in r["calls"].items()},
            "calls_total": sum(r["calls"].values()) / n,
            "log_lines": r["log_lines"] / n,
            "rss_mb": (first["rss_kb"] / 1000, last["rss_kb"] / 1000),
            "modules": (len(first["modules"]), len(last["modules"])),
        }
    return out


def diff(a_path: str, b_path: str, top: int) -> None:
    """Print per-ad differences B - A: messages by class, then per role total calls, log lines, RSS, modules and
    the ``top`` functions whose calls per ad moved most."""
    ra, rb = (json.loads(Path(p).read_text()) for p in (a_path, b_path))
    a, b = per_ad(ra), per_ad(rb)
    print(f"A {a_path}: {ra['accepted']} ads; B {b_path}: {rb['accepted']} ads")
    print(f"NATS messages per ad: A {a['messages_total']:.3f}  B {b['messages_total']:.3f}")
    for k in sorted(set(a["messages"]) | set(b["messages"]),
                    key=lambda k: -abs(b["messages"].get(k, 0) - a["messages"].get(k, 0))):
        va, vb = a["messages"].get(k, 0.0), b["messages"].get(k, 0.0)
        if abs(vb - va) >= 0.005 or va >= 0.05:
            print(f"  {va:8.3f} {vb:8.3f} {vb - va:+8.3f}  {k}")
    for role in b["roles"]:
        x, y = a["roles"].get(role), b["roles"][role]
        if x is None:
            continue
        print(f"{role}: calls per ad A {x['calls_total']:.1f} B {y['calls_total']:.1f}; log lines per ad "
              f"{x['log_lines']:.3f} / {y['log_lines']:.3f}; RSS MB start->end A {x['rss_mb'][0]:.1f}->"
              f"{x['rss_mb'][1]:.1f} B {y['rss_mb'][0]:.1f}->{y['rss_mb'][1]:.1f}; modules A {x['modules']} "
              f"B {y['modules']}")
        keys = set(x["calls"]) | set(y["calls"])
        moved = sorted(keys, key=lambda k: -abs(y["calls"].get(k, 0) - x["calls"].get(k, 0)))[:top]
        for k in moved:
            va, vb = x["calls"].get(k, 0.0), y["calls"].get(k, 0.0)
            print(f"  {va:9.2f} {vb:9.2f} {vb - va:+9.2f}  {k}")
        ma = set(ra["roles"][role]["marks"][-1]["modules"])
        mb = set(rb["roles"][role]["marks"][-1]["modules"])
        if mb - ma:
            print(f"  modules only in B ({len(mb - ma)}): {' '.join(sorted(mb - ma))}")
        if ma - mb:
            print(f"  modules only in A ({len(ma - mb)}): {' '.join(sorted(ma - mb))}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--code", help="the roles' source tree (default: this checkout)")
    p.add_argument("--ads", type=int, default=5000)
    p.add_argument("--rate", type=float, default=250.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tracemalloc", action="store_true", help="also note traced bytes by file (slower)")
    p.add_argument("--tap", help="a counting script in msg_tap.py's place (same arguments and output)")
    p.add_argument("--out", help="write the raw counts (JSON) here")
    p.add_argument("--diff", nargs=2, metavar=("A", "B"), help="print per-ad differences of two --out files")
    p.add_argument("--top", type=int, default=40)
    a = p.parse_args()
    if a.diff:
        diff(*a.diff, a.top)
        return 0
    d = run(a)
    if a.out:
        Path(a.out).write_text(json.dumps(d))
    s = per_ad(d)
    print(f"{d['accepted']} ads, {d['left_in_stream']} left in the work stream; NATS messages per ad "
          f"{s['messages_total']:.3f}")
    for role, r in s["roles"].items():
        print(f"  {role}: {r['calls_total']:.1f} calls per ad, {r['log_lines']:.3f} log lines per ad, RSS MB "
              f"{r['rss_mb'][0]:.1f} -> {r['rss_mb'][1]:.1f}, modules {r['modules']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
