"""What a burst of connections leaves in an API's memory (attack38b F6): RSS before, just after and a sweep after.

Run from the repository root against a ``gamead serve`` (or ``gamead up``'s API) you started, by its port and
PID (never found by name)::

    .venv/bin/python benchmarks/bench_burst_memory.py --port 24085 --pid 12345                 # 5,000 keep-alive
    .venv/bin/python benchmarks/bench_burst_memory.py --port 24085 --pid 12345 --slow 1000 --hold 30  # slowloris

``idle`` (default): ``--connections`` connections, one ``GET /healthz`` each, held ``--hold`` s, then closed.
``--slow N``: N connections each sending a 10 KB head a byte a second for ``--hold`` s (cut at ``api.read_timeout``,
then opened again). Prints VmRSS (``/proc/PID/status``, MB) before, at the end, and ``--after`` s later (one
sweep: ``gamead_core.collector.SWEEP_EVERY``, 30 s). Compare two APIs (this tree and ``--code``-style older
one) by running it on both at once: ratios in the same run only.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time


def rss_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS"))


async def idle(port: int, n: int, hold: float) -> None:
    conns = []
    for _ in range(n):
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            continue
        w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        conns.append(w)
    await asyncio.sleep(hold)
    for w in conns:
        w.close()


async def slow(port: int, n: int, hold: float) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: " + b"a" * 10_000
    end = time.monotonic() + hold

    async def one() -> None:
        while time.monotonic() < end:
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(1)
                continue
            try:
                for b in head:
                    if time.monotonic() > end or r.at_eof():
                        break
                    w.write(bytes([b]))
                    await w.drain()
                    await asyncio.sleep(1)
            except OSError:
                pass
            w.close()

    await asyncio.gather(*(one() for _ in range(n)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="the API's PID (its RSS is read)")
    ap.add_argument("--connections", type=int, default=5_000)
    ap.add_argument("--slow", type=int, default=0, help="slowloris connections instead of idle ones")
    ap.add_argument("--hold", type=float, default=20.0)
    ap.add_argument("--after", type=float, default=35.0)
    a = ap.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (20_000, 20_000))
    before = rss_mb(a.pid)
    asyncio.run(slow(a.port, a.slow, a.hold) if a.slow else idle(a.port, a.connections, a.hold))
    end = rss_mb(a.pid)
    time.sleep(a.after)  # the API's next sweep, not a wait on state: a measurement window
    later = rss_mb(a.pid)
    print(f"API pid {a.pid}: RSS {before} MB before, {end} MB at the burst's end, {later} MB {a.after:g} s later")


if __name__ == "__main__":
    main()
