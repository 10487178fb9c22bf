"""nc.publish with the write guard (``guard_writes``) vs nats-py's own, paired (review17).

Run from the repository root::

    .venv/bin/python benchmarks/bench_write_guard.py --rounds 40

One process, one embedded ``nats-server``, one connection; the guard's ``publish`` and nats-py's bound method are
both kept and called alternately, chunk by chunk (``--chunk`` publishes each, order swapped every chunk), each
message as an ad's work message (600 B, three headers, a reply). Only the publish calls are timed, in this process's
CPU time (the machine is shared): printed per way as µs per publish (medians over rounds), and the paired ratio
guarded/unguarded per round (read the ratio, not the µs).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats  # noqa: E402

from gamead_core.embedded import EmbeddedNats  # noqa: E402
from gamead_core.queue.liveness import guard_writes  # noqa: E402


async def measure(url: str, rounds: int, per_round: int, chunk: int) -> tuple[list[float], list[float]]:
    nc = await nats.connect(url, pending_size=64 * 1024 * 1024)
    raw = nc.publish
    guard_writes(nc, 32 * 1024 * 1024)
    guarded = nc.publish
    payload = b"x" * 600
    headers = {"Nats-Msg-Id": "01m8t2y64zx48snmgcfj3k0f2h", "Gamead-Ad-Id": "01m8t2y64zx48snmgcfj3k0f2h",
               "Gamead-Record-Revision": "12345"}
    reply = "_INBOX.aYoVmbnG5rgeanT92QksbO.123456"
    plain: list[float] = []
    checked: list[float] = []
    try:
        for r in range(-1, rounds):  # round -1 warms up
            spent = {raw: 0.0, guarded: 0.0}
            for k in range(per_round // chunk):
                for publish in (raw, guarded) if k % 2 == 0 else (guarded, raw):
                    started = time.process_time()
                    for _ in range(chunk):
                        await publish("bench.ads.p1", payload, reply=reply, headers=headers)
                    spent[publish] += time.process_time() - started
                    while nc.pending_data_size > 0:  # the flusher writes it out, untimed
                        await asyncio.sleep(0)
            if r >= 0:
                plain.append(spent[raw] / per_round * 1e6)
                checked.append(spent[guarded] / per_round * 1e6)
    finally:
        await nc.close()
    return plain, checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--per-round", type=int, default=2000, help="publishes per way per round")
    parser.add_argument("--chunk", type=int, default=100)
    args = parser.parse_args()
    server = EmbeddedNats(Path(tempfile.mkdtemp(prefix="bench-guard-")) / "nats").start()
    try:
        plain, checked = asyncio.run(measure(server.url, args.rounds, args.per_round, args.chunk))
    finally:
        server.stop()
    ratios = [c / p for p, c in zip(plain, checked)]
    print(f"unguarded {statistics.median(plain):.2f} µs/publish, guarded {statistics.median(checked):.2f} µs/publish "
          f"(CPU, medians of {args.rounds} rounds x {args.per_round}); paired ratio guarded/unguarded median "
          f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
