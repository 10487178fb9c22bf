"""A lease keeper alone, on a host clock off by a given number of seconds (review33 R8): the process keeps no
registry entry, as ``gamead up``'s own autoscaler does, so its only samples of nats-server's clock are its lease
writes.

``python tests/skewed_lease.py SECONDS NATS_URL BUCKET HOLDER TTL``: ``time.time``/``time.time_ns`` read SECONDS
ahead (negative: behind) before gamead is imported (as tests/skewed_gamead.py does), then a
:class:`~gamead_core.scaling.lease.LeaseKeeper` steps on the autoscaler lease in ``BUCKET`` until killed, printing
``step <n> leader=<0|1>`` after each step (flushed)."""

from __future__ import annotations

import asyncio
import sys
import time


async def _keep(url: str, bucket: str, holder: str, ttl: float) -> None:
    import nats

    from gamead_core.scaling.lease import LeaseKeeper

    nc = await nats.connect(url)
    kv = await nc.jetstream(timeout=5).create_key_value(bucket=bucket, history=1)
    keeper = LeaseKeeper(kv, holder, ttl)
    n = 0
    while True:
        wait = await keeper.step()
        n += 1
        print(f"step {n} leader={int(keeper.is_leader)}", flush=True)
        await asyncio.sleep(max(0.01, wait))


if __name__ == "__main__":
    skew = float(sys.argv[1])
    _time, _time_ns = time.time, time.time_ns
    time.time = lambda: _time() + skew  # type: ignore[assignment]
    time.time_ns = lambda: _time_ns() + int(skew * 1e9)  # type: ignore[assignment]
    asyncio.run(_keep(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])))
