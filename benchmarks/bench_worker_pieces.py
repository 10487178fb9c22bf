"""CPU of the small per-ad pieces of a worker's hot path, this tree against another, alternating (issue 14.2).

Run from the repository root::

    .venv/bin/python benchmarks/bench_worker_pieces.py --code /tmp/base --rounds 6

A burn-down's CPU per ad (``bench_worker_drain.py``) moves by ±20 % between rounds on a shared machine, more than
any one of these pieces weighs (1-3 µs each of ~300), so they are timed alone, each tree in a process of its own
(``PYTHONPATH``), one after the other and the order swapped every round, on one real ``nats-server``; CPU time of
the process (``time.process_time``), µs per call, medians of the rounds:

* ``header parse``: the connection's parse of a work delivery's header block (:mod:`gamead_core.queue.headers`);
* ``metrics.completed``: one completed ad's Prometheus series and heartbeat windows;
* ``announcement``: the held-ads announcement's bytes with 40 deliveries held (per start step, ~0.3 per ad);
* ``held ledger``: one ad's life in the held ledger on the batch start's path: held, flagged started, unflagged
  (analysed), popped, each flag change with its JSON (drain46);
* ``ack``: a settle round's ``ack`` of one delivery (4,000 put in the buffer without a turn of the loop);
* ``KV write``: a settle round's compare-and-set publish of a 2.5 kB completed record (its bytes only);
* ``bar order``: a pull behind the prefetch buffer's bar ordering the 5 levels (each level's ``head_key``, then
  ``pull_order``), once per such start step (cpuworker48);
* ``unstartedSince``: the announcement's per-level oldest wait over 26 buffered ads (cpuworker48);
* ``heartbeatAt``: the announcement's time text, as the tree's worker makes it (cpuworker48).

Nothing is sent but what the connection flushes on its own; the acks' reply subjects name no consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = 4000
_RAW = (b"Nats-Msg-Id: 01jdsample0000000000000000\r\nGamead-Ad-Id: 01jdsample0000000000000000\r\n"
        b"Gamead-Record-Revision: 123456\r\n\r\n")


def _per(f: object, n: int = N) -> float:
    t0 = time.process_time()
    for _ in range(n):
        f()  # type: ignore[operator]
    return (time.process_time() - t0) / n * 1e6


async def _pieces(url: str) -> dict[str, float]:
    """The pieces of the tree this process imports (``PYTHONPATH``); µs of CPU per call."""
    from nats.aio.msg import Msg

    from gamead_core.config import NatsSettings
    from gamead_core.queue import acks, hpub
    from gamead_core.queue.connection import connect
    from gamead_core.telemetry.metrics import WorkerMetrics
    from gamead_core.worker.announce import announcement
    from gamead_core.worker.held import HeldAds

    out: dict[str, float] = {}
    nc = await connect(NatsSettings(), url, name="bench-pieces")
    out["header parse"] = _per(lambda: nc._parse_header_lines(_RAW))
    m = WorkerMetrics(True)
    out["metrics.completed"] = _per(lambda: m.completed(3, 0.0004, 1.5, 1764849000.5))
    held = HeldAds()
    for i in range(40):
        held.hold(("GAMEAD_ADS", 100000 + i), f"01jd{i:022d}", f"{100000 + i}.1",
                  f"$JS.ACK.GAMEAD_ADS.gamead-level-3.1.{100000 + i}.{50000 + i}.32.1764849000123456789.{1500 - i}",
                  started=i % 3 == 0)
    head = b'{"id":"w"' + b',"x":1' * 250
    wire = getattr(held, "wire_json", held.wire)
    out["announcement"] = _per(lambda: announcement(head, wire(), 4, "2026-12-04T10:30:00.123Z", {3: 1.0}))
    ledger, keys = HeldAds(), [("GAMEAD_ADS", 200000 + i) for i in range(N)]
    t0 = time.process_time()
    for i, key in enumerate(keys):  # an ad's life in the ledger on the batch start's path
        ledger.hold(key, f"01jd{i:022d}", f"{key[1]}.1", f"$JS.ACK.GAMEAD_ADS.gamead-level-3.1.{key[1]}.{i}.32.1.9")
        ledger.mark_started(key)
        ledger.unmark(key)
        ledger.pop(key)
    out["held ledger"] = (time.process_time() - t0) / N * 1e6
    msgs = [Msg(_client=nc, subject="x", data=b"",
                reply=f"$JS.ACK.BENCHPIECES.c.1.{i}.{i}.1.1764849000123456789.{i}") for i in range(N)]
    ack_all = getattr(hpub, "ack_all", None)
    t0 = time.process_time()
    if ack_all is not None:
        ack_all(nc, msgs)
    else:
        for msg in msgs:
            await msg.ack()
    out["ack"] = (time.process_time() - t0) / N * 1e6
    nc._pending.clear()
    nc._pending_data_size = 0
    direct = "hpub.send" in Path(acks.__file__).read_text().split("async def publish_many")[1][:1500]
    payload, headers, loop, spent = b"x" * 2500, {"Nats-Expected-Last-Subject-Sequence": "123456"}, \
        asyncio.get_running_loop(), 0.0
    for _ in range(8):  # 500 at a time: under the write guard's bound
        t0 = time.process_time()
        for _ in range(500):
            if direct:
                await hpub.send(nc, "$KV.bench_pieces.x", payload, "_INBOX.bench.1", headers, loop)
            else:
                await nc.publish("$KV.bench_pieces.x", payload, reply="_INBOX.bench.1", headers=headers)
        spent += time.process_time() - t0
        nc._pending.clear()
        nc._pending_data_size = 0
    out["KV write"] = spent / 4000 * 1e6
    await nc.close()
    out.update(_step_pieces())
    return out


def _step_pieces() -> dict[str, float]:
    """The start step's pieces of cpuworker48, as the tree this process imports makes them; µs of CPU per call."""
    from nats.aio.msg import Msg

    from gamead_core import clock, names
    from gamead_core.models import iso_z, utcnow
    from gamead_core.queue.aging import LevelHead, delivery_key, head_key, pull_order
    from gamead_core.worker import announce
    from gamead_core.worker.prefetch import PrefetchBuffer
    from gamead_core.worker.unstarted import unstarted_since, waited_since

    out: dict[str, float] = {}
    heads = {1: LevelHead(1, 100, 3.2, 4), 2: LevelHead(2, 40, 5.0, 2, 1, 7.0), 3: LevelHead(3, 0, 0.0, 1),
             4: LevelHead(4, 12, 9.9), 5: LevelHead(5, 300, 20.0, 3)}
    out["bar order"] = _per(lambda: pull_order({lvl: h for lvl, h in heads.items()
                                                if head_key(h, 1.7e9, 2.0) < 1.7e9 + 5}, 2.0))
    buffer = PrefetchBuffer()
    for i in range(26):
        msg = Msg(_client=None, subject=names.level_subject(1 + i % 5), data=b"{}",  # type: ignore[arg-type]
                  reply=f"$JS.ACK.GAMEAD_ADS.c.1.{i + 1}.{i + 1}.{int((1.7e9 - i / 100) * 1e9)}.0")
        buffer.push(msg, delivery_key(msg, 1.7e9, 2.0), waited_since(msg))
    out["unstartedSince"] = _per(lambda: unstarted_since((), known=buffer.waiting()))
    now_iso = getattr(announce, "now_iso", None)
    out["heartbeatAt"] = _per((lambda: now_iso(clock.now())) if now_iso else (lambda: iso_z(utcnow())))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", required=True, help="the other source tree (PYTHONPATH), e.g. the code before")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a NATS URL: time the pieces in this process
    args = parser.parse_args()
    if args.child:
        print(" ".join(f"{k}={v:.3f}" for k, v in asyncio.run(_pieces(args.child)).items()))
        return
    sys.path.insert(0, str(ROOT))
    from gamead_core.embedded import EmbeddedNats

    trees = {"this tree": str(ROOT), f"--code {args.code}": args.code}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp)).start()
        try:
            for r in range(args.rounds):
                for name in list(trees)[:: 1 if r % 2 == 0 else -1]:
                    done = subprocess.run([sys.executable, "-P", __file__, "--code", args.code, "--child", server.url],
                                          capture_output=True, text=True, env={"PYTHONPATH": trees[name]}, check=True)
                    runs[name].append({k.strip(): float(v) for k, v in re.findall(r"([^=]+?)=([\d.]+)", done.stdout)})
        finally:
            server.stop()
    print(f"µs of CPU per call, medians of {args.rounds} rounds:")
    for name, rows in runs.items():
        print(f"  {name:<40} " + "  ".join(f"{k} {statistics.median(r[k] for r in rows):.2f}" for k in rows[0]))


if __name__ == "__main__":
    main()
