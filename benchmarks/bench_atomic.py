"""A batch's two writes as JetStream atomic batches vs an ack per ad (issue 14.3, ``api.batch_atomic``).

Run from the repository root::

    .venv/bin/python benchmarks/bench_atomic.py               # one embedded nats-server, R1 (~20 s)
    .venv/bin/python benchmarks/bench_atomic.py --cluster     # three nats-servers on loopback, R3 (~40 s)

In this process, gamead's own batch writes (:func:`gamead_core.batch_writes.create_records`, then
:func:`~gamead_core.batch_writes.publish_messages` with each record's revision) run on gamead's topology
(``ensure_topology``, ``queue.replicas`` 1 or 3), one request's batch after another (``--batches`` of ``--size``
ads), alternating rounds with atomic batches off (an ack per ad, :func:`publish_many`) and on (one ack per batch
per stream). Printed per round and mode: this process's CPU per ad, the nats-server(s)' CPU per ad (``/proc``), and
wall time per ad (one batch at a time: a latency figure, not a throughput one). No HTTP: the API's other work per
ad (validation, the answer) is the same in both modes. Every server started is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats  # noqa: E402

from gamead_cli.generate import generate_ads  # noqa: E402
from gamead_core.ad_ids import new_ad_ids  # noqa: E402
from gamead_core.batch_writes import create_records, publish_messages  # noqa: E402
from gamead_core.config import GameadSettings  # noqa: E402
from gamead_core.models import AdSubmission, utcnow  # noqa: E402
from gamead_core.queue.atomic import AtomicBatches  # noqa: E402
from gamead_core.queue.publish import Outgoing  # noqa: E402
from gamead_core.queue.topology import ensure_topology  # noqa: E402
from gamead_core.store.ads import AdStore  # noqa: E402
from gamead_core.store.queued_json import queued_records  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(urls: list[str], pids: list[int], replicas: int, args: argparse.Namespace) -> None:
    nc = await nats.connect(urls)
    js = nc.jetstream(timeout=10)
    settings = GameadSettings.model_validate({"queue": {"replicas": replicas}})
    await ensure_topology(js, settings)
    store = await AdStore.open(nc, js)
    ads = [AdSubmission.model_validate(a) for a in generate_ads(args.size, seed=7)]

    async def batch(atomic: AtomicBatches) -> None:
        ids = new_ad_ids(len(ads))
        payloads = queued_records(ids, utcnow(), ads)
        revisions = await create_records(js, store, atomic, ids, payloads)
        outgoing = [Outgoing(i, a.priority, p, r) for i, a, p, r in zip(ids, ads, payloads, revisions, strict=True)
                    if isinstance(r, int)]
        published = await publish_messages(js, atomic, outgoing, timeout=5.0)
        failed = len(ads) - sum(1 for p in published if not isinstance(p, Exception))
        if failed:
            raise SystemExit(f"{failed} ads of a batch were not queued: {published[:3]}")

    figures: dict[str, list[tuple[float, float, float]]] = {"ack per ad": [], "atomic": []}
    for round_ in range(1, args.rounds + 1):
        for mode in figures:
            atomic = AtomicBatches(enabled=mode == "atomic")
            await batch(atomic)  # warm-up (the ack subscription, the first batch)
            c0, s0, t0 = time.process_time(), sum(map(cpu_seconds, pids)), time.monotonic()
            for _ in range(args.batches):
                await batch(atomic)
            c1, s1, t1 = time.process_time(), sum(map(cpu_seconds, pids)), time.monotonic()
            n = args.batches * args.size
            row = (1e6 * (c1 - c0) / n, 1e6 * (s1 - s0) / n, 1e6 * (t1 - t0) / n)
            figures[mode].append(row)
            print(f"round {round_} {mode:>10}: this process {row[0]:5.1f} µs, nats-server(s) {row[1]:5.1f} µs "
                  f"CPU per ad, wall {row[2]:6.1f} µs per ad (batches of {args.size}, one at a time)", flush=True)
    for mode, rows in figures.items():
        print(f"median {mode:>10}: this process {statistics.median(r[0] for r in rows):5.1f} µs, nats-server(s) "
              f"{statistics.median(r[1] for r in rows):5.1f} µs CPU per ad, wall "
              f"{statistics.median(r[2] for r in rows):6.1f} µs per ad; R{replicas}, load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cluster", action="store_true", help="three nats-servers on loopback, streams R3")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=100, help="batches per round and mode")
    parser.add_argument("--size", type=int, default=100, help="ads per batch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-atomic-") as tmp:
        if args.cluster:
            from benchmarks.needs_test_install import require  # noqa: PLC0415

            require(__file__, " --cluster")
            from tests.cluster import NatsCluster  # noqa: PLC0415 - three routed JetStream nodes, stopped by PID

            cluster = NatsCluster(Path(tmp)).start()
            try:
                pids = [n.proc.pid for n in cluster.nodes if n.proc is not None]
                asyncio.run(run(cluster.servers, pids, 3, args))
            finally:
                cluster.stop()
        else:
            from gamead_core.embedded import EmbeddedNats  # noqa: PLC0415

            server = EmbeddedNats(Path(tmp)).start()
            try:
                assert server.proc is not None
                asyncio.run(run([server.url], [server.proc.pid], 1, args))
            finally:
                server.stop()


if __name__ == "__main__":
    main()
