"""Publish-ack replies handled by a task (nats-py's ``cb=``) vs inside the read loop (perf15, ``inline_sub``).

Run from the repository root::

    .venv/bin/python benchmarks/bench_ack_dispatch.py --rate 300 --seconds 2 --rounds 10

One process, one embedded ``nats-server``, one connection, two :class:`gamead_core.queue.acks._Acks` on it: ``task``
subscribes its reply wildcard with ``cb=`` (each ack: the read loop queues it, the subscription's task wakes in a
later loop turn and fills the publisher's future, as before perf15), ``inline`` is gamead's own (the read loop
fills the future: :mod:`gamead_core.queue.inline_sub`). Each round holds ``--rate`` operations a second, open loop,
each ``--per`` (2, as a submit) acknowledged 600-byte publishes one after the other, for ``--seconds``; the two
ways alternate (order swapped every round). Printed: this process's CPU µs per operation and the nats-server's,
per way, and the paired ratio inline/task per round (the machine is shared: read the ratio, not the µs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats  # noqa: E402
from nats.aio.msg import Msg  # noqa: E402

from bench_submit_steady import paced  # noqa: E402

from gamead_core.embedded import EmbeddedNats  # noqa: E402
from gamead_core.proc import cpu_sample  # noqa: E402
from gamead_core.queue import acks  # noqa: E402


class TaskAcks(acks._Acks):  # noqa: SLF001 - the same map and futures, the reply subscription nats-py's usual way
    async def _subscribe(self) -> None:
        async with self._lock:
            if self._prefix:
                return
            prefix = self._nc.new_inbox() + "."
            on_reply = self._on_reply

            async def cb(msg: Msg) -> None:
                on_reply(msg)

            await self._nc.subscribe(prefix + "*", cb=cb)
            self._loop = asyncio.get_running_loop()
            self._cut = len(prefix)
            self._prefix = prefix


def cpu_seconds(pid: int) -> float:
    sample = cpu_sample(pid)
    return sample.cpu_seconds if sample else 0.0


def publishes(way: acks._Acks, per: int) -> Callable[[int], Awaitable[None]]:  # noqa: SLF001
    """One operation: ``per`` acknowledged publishes in sequence (a submit's record create and work message)."""
    payload = b"x" * 600

    async def op(i: int) -> None:
        for k in range(per):
            msg_id = f"{id(way)}-{i}-{k}-{time.monotonic_ns()}"
            await (await way.publish(f"bench.ack.{k}", payload, {"Nats-Msg-Id": msg_id}, 5.0))

    return op


async def run(a: argparse.Namespace) -> None:
    from bench_pipeline import scratch_dir  # noqa: PLC0415

    server = EmbeddedNats(scratch_dir("gamead-bench-ackdispatch-")).start()
    try:
        nc = await nats.connect(server.url)
        await nc.jetstream().add_stream(name="BENCH_ACK", subjects=["bench.ack.>"], storage="file")
        ways = {"task": TaskAcks(nc), "inline": acks._Acks(nc)}  # noqa: SLF001
        for way in ways.values():  # warm-up
            await paced(publishes(way, a.per), a.rate, 1.0)
        own: dict[str, list[float]] = {k: [] for k in ways}
        srv: dict[str, list[float]] = {k: [] for k in ways}
        for r in range(a.rounds):
            for k in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
                s0, n = cpu_seconds(server.proc.pid), max(1, int(a.rate * a.seconds))
                own[k].append(await paced(publishes(ways[k], a.per), a.rate, a.seconds))  # the open-loop pacer
                srv[k].append((cpu_seconds(server.proc.pid) - s0) / n * 1e6)
        await nc.close()
    finally:
        server.stop()
    ratios = [b / t for t, b in zip(own["task"], own["inline"], strict=True)]
    print(f"{a.rate:g} ops/s, {a.per} acknowledged publishes each, {a.rounds} rounds of {a.seconds:g} s, "
          f"load average {os.getloadavg()[0]:.1f}")
    for k in ways:
        print(f"  {k:7s} client CPU µs per op: median {statistics.median(own[k]):.1f} "
              f"{[round(x) for x in own[k]]}; nats-server median {statistics.median(srv[k]):.0f}")
    print(f"  inline/task, paired by round: median {statistics.median(ratios):.3f} "
          f"(below 1 in {sum(x < 1 for x in ratios)} of {len(ratios)})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=300.0, help="operations per second (300)")
    p.add_argument("--seconds", type=float, default=2.0, help="seconds per round and way (2)")
    p.add_argument("--rounds", type=int, default=10, help="rounds, each way once per round (10)")
    p.add_argument("--per", type=int, default=2, help="acknowledged publishes per operation (2, as a submit)")
    a = p.parse_args()
    import uvloop  # noqa: PLC0415

    uvloop.install()
    asyncio.run(run(a))


if __name__ == "__main__":
    main()
