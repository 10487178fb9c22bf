"""attack29b F6: ``gamead up``'s RSS grew ~0.3 MB a minute for as long as its autoscaler ran: the sampler's ring kept
every sample's whole registry listing (600 samples; the autoscaler samples every 5 s, so 50 minutes of growth), and
a node's memory grew with the fleet (600 × every worker's entry, latency buckets included). Only the newest sample
now keeps the listing, which is the one every reader takes. Pure: the sampler's ring without NATS."""

from __future__ import annotations

import asyncio
import tracemalloc
from datetime import datetime, timezone

from gamead_core.config import GameadSettings
from gamead_core.registry import NodeInfo
from gamead_core.registry.nodes import LatencyBuckets
from gamead_core.stats.reading import QueueReading
from gamead_core.stats.sampler import QueueSampler, Sample
from gamead_core.telemetry.histogram import WindowedHistogram

T0 = 1_764_000_000.0
#: samples appended, the first EARLY of them before the memory's first reading
SAMPLES = 150
EARLY = 20


def _fleet(t: float, workers: int) -> tuple[NodeInfo, ...]:
    """A registry listing as a read decodes it: new objects each time, every worker with its latency buckets."""
    at = datetime.fromtimestamp(T0, timezone.utc)
    h = WindowedHistogram()
    for v in (0.001, 0.002, 0.02):
        h.observe(v, t)
    counts = h.counts(t)  # once: each model below validates it into lists of its own
    return tuple(NodeInfo(id=f"w{k}", role="worker", host="h", pid=k + 1, version="0", started_at=at, heartbeat_at=at,
                          processed=int(t - T0), latency_buckets=LatencyBuckets(processing=counts, queue_wait=counts))
                 for k in range(workers))


def test_the_ring_keeps_one_registry_listing_not_one_per_sample() -> None:
    sampler = QueueSampler(None, GameadSettings(), node_id="up", interval=5.0)  # type: ignore[arg-type]  # no I/O here
    tracemalloc.start()
    try:
        for i in range(SAMPLES):
            t = T0 + 5.0 * i
            reading = QueueReading(t=t, connected=True, levels=(), last_seq=i, nodes=_fleet(t, 16))
            sampler._append(sampler._derive(reading))  # noqa: SLF001 - what sample() does after its reads
            if i == EARLY:
                early, _ = tracemalloc.get_traced_memory()
        late, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(sampler.ring) == SAMPLES and sum(1 for s in sampler.ring if s.reading.nodes) == 1
    last: Sample = sampler.ring[-1]
    assert last.reading.nodes is not None and len(last.reading.nodes) == 16  # what readers take: the newest
    assert sampler.rates["completedPerSec"] is not None  # the rates still come from every sample's totals
    # 130 more samples of 16 workers each: before, 9.4 MB more (every listing kept, ~70 KB a sample); now 0.65 MB,
    # the ring's own samples (their fleet-wide percentiles), whatever the fleet's size. (280 more: 20.1 vs 1.4 MB
    # for 2.4-3.7 CPU-s, which at load 40-65 on 2 cores outlasted the 120 s timeout (flake56); 130: 0.8-1.0 CPU-s)
    assert late - early < 4_000_000, (early, late)


def test_samples_taken_at_once_are_appended_in_the_order_they_were_taken() -> None:
    """review29 F7: ``gamead up``'s first decision took a sample while its sampler's loop took its first; the one
    begun first could be appended last (the ring out of time order). Samples are now taken one at a time."""
    delays = iter([0.05, 0.0])

    async def extra() -> None:  # the slower read is the first sample's
        await asyncio.sleep(next(delays))

    class Down:
        nc = js = None

    ticks = iter(range(1, 100))
    sampler = QueueSampler(Down(), GameadSettings(), node_id="up", extras={"x": extra},  # type: ignore[arg-type]
                           clock=lambda: T0 + next(ticks))

    async def both() -> None:
        await asyncio.gather(sampler.sample(), sampler.sample())

    asyncio.run(both())
    times = [s.t for s in sampler.ring]
    assert len(times) == 2 and times == sorted(times), times
