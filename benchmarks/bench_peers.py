"""One gamead worker process draining a backlog vs its peers measured in the same run: a raw nats-py loop,
Celery ``-P solo`` and arq, the peers with a no-op task (issue 14's worker targets).

Run from the repository root (the first run installs each peer into a virtualenv of its own under
``.venv-peers/``: Celery's Redis transport and arq need different redis-py versions)::

    .venv/bin/python benchmarks/bench_peers.py                 # 10,000 tasks, 3 rounds, medians
    .venv/bin/python benchmarks/bench_peers.py --ads 5000 --rounds 1

Each round drains a backlog of ``--ads`` of each, burn-down, one process each, timed from its first finished
task (start-up not counted) to the last:

* **gamead**: one ``gamead worker`` at the default concurrency with the **real analysis**, as
  ``bench_worker_drain.py`` runs it (records created, then the messages; the outcome's compare-and-set, ack);
* **raw**: nats-py ``fetch(100)`` + ``ack`` running the same ``analyze()`` (``bench_worker_drain.py``);
* **celery**: Celery ``worker -P solo`` (one process, its default prefetch), broker a real ``valkey-server``,
  no result backend, a **no-op** task (``benchmarks/peers/celery_noop.py``); the tasks are sent first;
* **arq**: an arq worker, ``max_jobs`` 16, ``poll_delay`` 1 ms (its default 0.5 s would cap it at 32 jobs/s),
  no result kept, the same Valkey, a **no-op** job (``benchmarks/peers/arq_noop.py``).

Printed per round and as medians: tasks/s and CPU µs per task of each process, and the ratios the issue sets
(gamead / raw ≥ 0.8, gamead / arq ≥ 1, gamead / celery ≥ 2), each the median of the rounds' own ratios. Every
process is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_common import load_average  # noqa: E402
from bench_pipeline import Procs  # noqa: E402
from bench_worker_drain import drain_gamead, drain_levels, publish_backlog, raw_batch  # noqa: E402

from gamead_core.embedded import EmbeddedNats  # noqa: E402
from benchmarks.needs_test_install import require  # noqa: E402

require(__file__)

from tests.redis_fixtures import ValkeyProc  # noqa: E402

PEERS = HERE / "peers"
#: Each peer in a virtualenv of its own, made on the first run (Celery's Redis transport needs redis-py ≥ 6.4,
#: arq < 6: they cannot share one, nor gamead's).
PEER_VENVS = HERE.parent / ".venv-peers"
PEER_REQUIREMENTS = {"celery": ["celery[redis]>=5.4"], "arq": ["arq>=0.26"]}
#: How long a peer may take to drain one backlog before the run gives up on it, s.
DRAIN_LIMIT = 300.0


def peer_python(peer: str) -> str:
    """The interpreter of ``peer``'s virtualenv, made and filled with :data:`PEER_REQUIREMENTS` if missing."""
    venv = PEER_VENVS / peer
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        print(f"installing {peer} into {venv} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_REQUIREMENTS[peer]], check=True)
        (venv / ".installed").touch()
    return str(python)


def peer_version(peer: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({peer!r}))"
    return subprocess.run([peer_python(peer), "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def drain_peer(peer: str, broker: str, n: int, procs: Procs, out: Path) -> dict[str, float]:
    """Flush the broker, queue ``n`` no-op tasks with ``peer``'s own client (``peers/<peer>_noop.py N``), then
    drain them with one worker process of ``peer``; returns ``{"rate": tasks/s, "cpu_us": µs per task}``."""
    import redis  # noqa: PLC0415

    redis.Redis.from_url(broker).flushall()
    python = peer_python(peer)
    env = {**os.environ, "PYTHONPATH": str(PEERS), "BENCH_PEER_BROKER": broker, "BENCH_PEER_N": str(n),
           "BENCH_PEER_OUT": str(out)}
    subprocess.run([python, str(PEERS / f"{peer}_noop.py"), str(n)], env=env, check=True, cwd=PEERS)
    argv = ([python, "-m", "celery", "-A", "celery_noop", "worker", "-P", "solo", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"] if peer == "celery"
            else [python, "-m", "arq", "arq_noop.WorkerSettings"])
    worker = procs.start(f"{peer}-worker", argv, env)
    try:
        deadline = time.monotonic() + DRAIN_LIMIT
        while not out.exists():
            if worker.poll() is not None:
                raise SystemExit(f"the {peer} worker exited ({worker.returncode}): see its log")
            if time.monotonic() > deadline:
                raise SystemExit(f"the {peer} worker did not drain its backlog in {DRAIN_LIMIT:.0f} s")
            time.sleep(0.05)
        result: dict[str, float] = json.loads(out.read_text())
        return result
    finally:
        procs.stop(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ads", type=int, default=10_000, help="backlog per round and contender")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    versions = {peer: peer_version(peer) for peer in PEER_REQUIREMENTS}
    runs: dict[str, list[dict[str, float]]] = {"gamead": [], "raw": [], "celery": [], "arq": []}
    print(f"load average at the start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "logs").mkdir()
        procs = Procs(root / "logs")
        server = EmbeddedNats(root / "nats").start()
        valkey = ValkeyProc(root / "valkey").start()
        try:
            for r in range(args.rounds):
                asyncio.run(publish_backlog(server.url, args.ads, seed=r))
                runs["gamead"].append(asyncio.run(drain_gamead(server.url, args.ads, procs, None)))
                asyncio.run(publish_backlog(server.url, args.ads, seed=100 + r))
                runs["raw"].append(asyncio.run(drain_levels(server.url, args.ads, raw_batch)))
                for peer in PEER_REQUIREMENTS:
                    runs[peer].append(drain_peer(peer, valkey.url, args.ads, procs, root / f"{peer}-{r}.json"))
                print(f"round {r + 1}, tasks/s (CPU µs per task): " + "   ".join(
                    f"{name} {rows[-1]['rate']:6.0f}/s ({rows[-1]['cpu_us']:4.0f} µs)" for name, rows in runs.items()),
                    flush=True)
        finally:
            procs.stop_all()
            valkey.stop()
            server.stop()
    if args.rounds < 3:
        print("fewer than 3 rounds: on a shared machine one round's ratios are noise; the verdicts say little")
    rate = {name: statistics.median(row["rate"] for row in rows) for name, rows in runs.items()}
    print(f"\nmedian of {args.rounds} (burn-down of {args.ads:,} each, one process each; load average at the end: "
          f"{load_average()}):")
    what = {"gamead": "gamead worker, concurrency 4, real analysis", "raw": "raw nats-py fetch+ack, real analysis",
            "celery": f"Celery {versions['celery']} -P solo, no-op task",
            "arq": f"arq {versions['arq']}, max_jobs 16, poll 1 ms, no-op job"}
    for name, rows in runs.items():
        print(f"  {what[name]:<45} {rate[name]:7.0f} tasks/s, {statistics.median(r['cpu_us'] for r in rows):5.0f} "
              "µs CPU per task (its process)")
    for peer, target in (("raw", 0.8), ("arq", 1.0), ("celery", 2.0)):
        # each round's contenders ran back to back on the same machine: the ratio is taken within a round
        rounds = [g["rate"] / p["rate"] for g, p in zip(runs["gamead"], runs[peer], strict=True)]
        ratio = statistics.median(rounds)
        print(f"  tasks/s, gamead / {peer:<7} {ratio:5.2f}, median of the rounds' ratios "
              f"({', '.join(f'{r:.2f}' for r in rounds)}; target ≥ {target:g}: {'met' if ratio >= target else 'MISSED'})")


if __name__ == "__main__":
    main()
