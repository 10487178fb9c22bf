"""nats-server's CPU when gamead's work stream empties after every ad (issue 14: steady ads vs drained ones).

Run from the repository root::

    .venv/bin/python benchmarks/bench_block_churn.py                 # 3 rounds of 1,000 ads at 200/s (~35 s)
    .venv/bin/python benchmarks/bench_block_churn.py --rate 0        # back to back (it still empties per ad)
    .venv/bin/python benchmarks/bench_block_churn.py --output json

Why: at a steady rate gamead's work stream (``GAMEAD_ADS``, work-queue retention, file storage) is empty most of
the time, because each ad is acknowledged before the next arrives. nats-server's file store then removes the
stream's last message block each time its last message goes, creating a new block file with a tombstone first
(``fileStore.removeMsgBlock``): a file created, written and unlinked per ad.

Each contender gets a nats-server of its own (:class:`~gamead_core.embedded.EmbeddedNats`, as ``gamead up``
starts it) and gamead's topology (``ensure_topology``); then ``--ads`` ads go one at a time, paced at ``--rate``
ads/s, each published to level 3's subject, fetched from level 3's consumer and acknowledged (awaited), as a
worker would, with no record writes and no analysis:

* **emptied**: nothing else in the stream, as in gamead;
* **kept non-empty**: one message on a subject of the stream that no consumer reads was published first, so the
  stream's last block never empties while its ads come and go.

Printed per contender: nats-server's CPU µs per ad (every thread's ``/proc/PID/task/*/schedstat``), its wake-ups
per ad (times its threads went to sleep waiting: ``voluntary_ctxt_switches``) and message blocks created per ad
(how far the newest ``<n>.blk`` index in the store directory moved), each the median over ``--rounds`` rounds in
an order that rotates, and "kept non-empty" as a multiple of "emptied" in the same round.
Every server started is stopped by PID at the end.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

import nats  # noqa: E402

from bench_common import finish_main, rounds_and_output  # noqa: E402
from bench_pipeline import proc_oncpu_seconds, proc_switches, required  # noqa: E402
from gamead_core import names  # noqa: E402
from gamead_core.config import GameadSettings  # noqa: E402
from gamead_core.embedded import EmbeddedNats  # noqa: E402
from gamead_core.queue.topology import ensure_topology  # noqa: E402

LEVEL = 3
#: a subject of the work stream (``gamead.ads.*``) that no level's consumer reads
KEEPER_SUBJECT = f"{names.ADS_SUBJECT_PREFIX}.keep"
CONTENDERS = ("emptied", "kept non-empty")


def last_block_index(store_dir: Path) -> int:
    """The index of the newest message block file of the work stream (``<n>.blk``): blocks created so far."""
    msgs = next(store_dir.glob(f"**/streams/{names.ADS_STREAM}/msgs"), None)
    if msgs is None:
        raise RuntimeError(f"no {names.ADS_STREAM} message store under {store_dir}")
    return max((int(p.stem) for p in msgs.glob("*.blk")), default=0)


async def one(contender: str, n: int, rate: float, body: bytes) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="gamead-bench-churn-") as tmp, EmbeddedNats(Path(tmp)) as server:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream(timeout=10)
            await ensure_topology(js, GameadSettings())
            if contender == "kept non-empty":
                await js.publish(KEEPER_SUBJECT, b"keep")
            sub = await js.pull_subscribe_bind(names.level_consumer(LEVEL), names.ADS_STREAM)
            subject = names.level_subject(LEVEL)
            pid = server.proc.pid
            blocks0, cpu0 = last_block_index(Path(tmp)), required(proc_oncpu_seconds(pid), pid)
            sleeps0 = required(proc_switches(pid), pid)[0]
            start = time.monotonic()
            for i in range(n):
                if rate:
                    await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
                await js.publish(subject, body)
                msgs = await sub.fetch(1, timeout=10)
                await msgs[0].ack_sync()
            cpu = required(proc_oncpu_seconds(pid), pid) - cpu0
            woken = required(proc_switches(pid), pid)[0] - sleeps0
            return {"server_cpu_us": cpu / n * 1e6, "blocks_per_ad": (last_block_index(Path(tmp)) - blocks0) / n,
                    "wake_ups_per_ad": woken / n}
        finally:
            await nc.close()


async def run(args: argparse.Namespace) -> dict[str, object]:
    body = b"x" * args.bytes
    rounds: list[dict[str, dict[str, float]]] = []
    for r in range(args.rounds):
        order = CONTENDERS[r % 2:] + CONTENDERS[:r % 2]
        this = {}
        for c in order:
            this[c] = await one(c, args.ads, args.rate, body)
            print(f"[bench] round {r + 1}, {c}: nats-server {this[c]['server_cpu_us']:.0f} µs CPU per ad, "
                  f"{this[c]['wake_ups_per_ad']:.1f} wake-ups per ad, "
                  f"{this[c]['blocks_per_ad']:.2f} blocks created per ad", file=sys.stderr)
        rounds.append(this)
    return {
        "ads": args.ads, "rate": args.rate, "bytes": args.bytes, "rounds": args.rounds,
        "contenders": [{
            "contender": c,
            "server_cpu_us_per_ad": round(statistics.median(r[c]["server_cpu_us"] for r in rounds), 1),
            "blocks_created_per_ad": round(statistics.median(r[c]["blocks_per_ad"] for r in rounds), 3),
            "wake_ups_per_ad": round(statistics.median(r[c]["wake_ups_per_ad"] for r in rounds), 1),
            "x_emptied": round(statistics.median(r[c]["server_cpu_us"] / r["emptied"]["server_cpu_us"]
                                                 for r in rounds), 2),
        } for c in CONTENDERS],
    }


def print_table(res: dict[str, object]) -> None:
    pace = "back to back" if not res["rate"] else f"at {res['rate']:g} ads/s"
    print(f"nats-server per ad: publish, fetch, ack of {res['ads']:,} ads of {res['bytes']} bytes, one at a time "
          f"{pace} (median of {res['rounds']} rounds)")
    print(f"{'contender':<16} {'nats-server CPU µs per ad':>26} {'× emptied':>10} {'wake-ups per ad':>16} "
          f"{'blocks created per ad':>22}")
    for row in res["contenders"]:  # type: ignore[attr-defined]
        print(f"{row['contender']:<16} {row['server_cpu_us_per_ad']:>26.0f} {row['x_emptied']:>10.2f} "
              f"{row['wake_ups_per_ad']:>16.1f} {row['blocks_created_per_ad']:>22.3f}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ads", type=int, default=1000, help="ads per contender per round (1000)")
    p.add_argument("--rate", type=float, default=200.0, help="ads per second, one at a time; 0 = back to back (200)")
    p.add_argument("--bytes", type=int, default=1000, help="message body size (1000, about a work message)")
    rounds_and_output(p)
    return finish_main(p, argv, lambda a: None if a.ads >= 1 and a.rounds >= 1 and a.rate >= 0 and a.bytes >= 1
                       else "--ads, --rounds and --bytes must be ≥ 1 and --rate ≥ 0", lambda a: asyncio.run(run(a)),
                       print_table)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
