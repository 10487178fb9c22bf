"""Issue 12 item 3: the DLQ mover's sweep runs on one worker, the holder of the reaper lease."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import Registry
from gamead_core.store.ads import AdStore
from gamead_core.worker.mover import Sweeper
from gamead_core.worker.reaper import run_reaper
from gamead_core.embedded import EmbeddedNats
from tests.waits import until


def test_of_two_workers_only_the_lease_holder_sweeps(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """Two workers' reapers run side by side with a 0.2 s sweep: once four sweeps are done, all of them
    came from one worker, the one holding the ``reaper`` lease; the other read nothing for it."""
    server = fresh_nats()
    # a reaper lease of 3 s (3 heartbeats): a loaded machine's stall of a few tenths lapses no lease
    # (with 0.2 s heartbeats it lasted 0.6 s, and a lapsed lease is rightly taken over: both swept)
    settings = GameadSettings(registry={"heartbeat_interval": 1.0, "ttl": 10.0})

    async def main() -> tuple[int, int, str | None]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        stop = asyncio.Event()
        try:
            await ensure_topology(js, settings)
            store = await AdStore.open(nc, js)
            registry = Registry(nc, js, settings.registry)
            sweepers = {me: Sweeper(every=0.2) for me in ("worker-a", "worker-b")}
            tasks = [asyncio.create_task(run_reaper(nc, js, store, registry, settings, me, stop, sweeper=sw))
                     for me, sw in sweepers.items()]
            await until(lambda: sum(sw.runs for sw in sweepers.values()) >= 4, timeout=20, what="4 sweeps")
            kv = await js.key_value(names.LEASES_BUCKET)
            holder = (await kv.get(names.REAPER_LEASE)).value.decode()
            stop.set()
            await asyncio.gather(*tasks)
            a, b = (sweepers[k].runs for k in ("worker-a", "worker-b"))
            return a, b, next((me for me in sweepers if me in holder), None)
        finally:
            await nc.close()

    a, b, holder = asyncio.run(main())
    assert a + b >= 4, (a, b)
    assert sorted((a, b))[0] == 0, f"both workers swept: {a} and {b}"
    assert holder == ("worker-a" if a else "worker-b")
