"""attack29a F4: ``gamead up``'s autoscaler sampled its own queue sampler once per tick (every 5 s and the tick's
own time), so its rates never spanned the minute: ``gamead scale status`` said ``rates over last 55 s (under a
minute of samples: the leader restarted)`` for ever, 9 % above ``/v1/stats``. Its sampler now runs every second,
as an API node's does, and each decision reads its latest sample."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace

import nats

from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.topology import ensure_topology
from gamead_core.scaling.loop import Autoscaler, AutoscalerDeps, backend_for
from gamead_core.stats import QueueSampler
from gamead_core.worker.lost_count import count_lost
from tests.waits import until


def test_up_s_autoscaler_samples_every_second_between_its_5s_ticks(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()
    settings = GameadSettings(autoscaler={"backend": "none", "interval": 5})

    async def main() -> None:
        nc = await nats.connect(server.url)
        js = nc.jetstream(timeout=2)
        stop = asyncio.Event()
        try:
            await ensure_topology(js, settings)
            link = SimpleNamespace(nc=nc, js=js, ready=asyncio.Event())
            link.ready.set()
            # as `gamead up` makes it: no stats sampler in the process, a sampler of the autoscaler's own
            autoscaler = Autoscaler(settings.autoscaler, AutoscalerDeps.standalone(
                settings, link, node_id="up-test", backend=backend_for(settings.autoscaler)))
            task = asyncio.create_task(autoscaler.run(stop))

            def sampled_at() -> str | None:
                return ((autoscaler.status() or {}).get("observed") or {}).get("sampledAt")

            first = await until(sampled_at, timeout=30.0, what="a first decision")
            second = await until(lambda: (at := sampled_at()) != first and at,
                                 timeout=30.0, what="a second decision, a tick later")
            stop.set()
            await task
        finally:
            await nc.close()
        t0, t1 = (datetime.fromisoformat(x).timestamp() for x in (first, second))
        between = [s.t for s in autoscaler.sampler.ring if t0 + 0.001 < s.t < t1 - 0.001]
        # one tick (5 s) apart, each decision on the latest sample: samples every second in between (3 or 4 on an
        # idle machine; a loaded one may skip some), where a sampler sampled once per tick had none
        assert len(between) >= 2, (first, second, between)
        assert autoscaler.status()["observed"]["windowSeconds"] >= t1 - t0 - 0.01  # its rates span the samples it has

    asyncio.run(main())


def test_up_s_own_sampler_reads_what_its_autoscaler_uses_and_not_the_lost_attempts(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """idle56: ``gamead up``'s sampler read the lost-attempts counter every second, which only ``/v1/stats``'
    ``retriedPerSec`` counts (an API node's sampler, ``sections``); its autoscaler never looks at it. The levels
    and the work stream it decides on are still read; an API node's sampler still reads the counter."""
    server = fresh_nats()
    settings = GameadSettings()

    async def main() -> tuple[object, object, object]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream(timeout=2)
            await ensure_topology(js, settings)
            assert await count_lost(js, 7)  # attempts lost with crashed workers, cluster-wide
            link = SimpleNamespace(nc=nc, js=js, last_error=None)
            up = AutoscalerDeps.standalone(settings, link, node_id="up-test", backend=None).sampler
            api = QueueSampler(link, settings, node_id="api-test")
            return (await up.sample()).reading, (await api.sample()).reading, up.errors
        finally:
            await nc.close()

    up, api, errors = asyncio.run(main())
    assert up.lost_attempts is None and api.lost_attempts == 7  # type: ignore[attr-defined]
    assert up.pending == 0 and up.last_seq is not None and errors == []  # type: ignore[attr-defined]
