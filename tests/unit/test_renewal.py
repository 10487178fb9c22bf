"""When an answer renews the sampler's reading before judging nodes by it (:mod:`gamead_core.stats.renewal`,
newcomer33 F4): only a connected reading the sampler did not renew for two of its intervals (this process stood
still). A reading of NATS unreachable is judged as it is, so nodes nobody can see keep ageing to ``late`` and
``stuck`` (the rule of :func:`gamead_core.stats.document._state`); and a fresh one is never read again."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from gamead_core.config import GameadSettings
from gamead_core.stats.reading import QueueReading
from gamead_core.stats.renewal import is_stale
from gamead_core.stats.sampler import QueueSampler, Sample

T0 = 1_800_000_000.0


def sampler_at(now: list[float], connected: bool) -> QueueSampler:
    """A sampler (interval 1 s) whose newest sample was taken at ``T0``, NATS reachable or not then; its NATS
    link is down now, so a sample it takes records ``connected=False`` at the time it is taken."""
    sampler = QueueSampler(SimpleNamespace(nc=None, js=None, last_error="down"), GameadSettings(), node_id="api-1",
                           clock=lambda: now[0], sections=False)
    sampler.ring.append(Sample(QueueReading(t=T0, connected=connected)))
    return sampler


def test_only_a_connected_reading_two_intervals_old_is_renewed() -> None:
    now = [T0 + 1.9]
    fresh, stood_still = sampler_at(now, True), sampler_at([T0 + 6.0], True)
    assert not is_stale(fresh, now[0]) and is_stale(stood_still, T0 + 6.0)
    assert not is_stale(sampler_at(now, False), T0 + 60.0)  # NATS unreachable at the last read: judged as it is


def test_a_stale_reading_is_renewed_once_for_concurrent_answers() -> None:
    now = [T0 + 6.0]
    sampler = sampler_at(now, True)

    async def answers() -> None:
        await asyncio.gather(*(sampler.current() for _ in range(5)))

    asyncio.run(answers())
    assert [s.t for s in sampler.ring] == [T0, T0 + 6.0]  # one new sample, taken now (NATS down: said so)
    asyncio.run(answers())
    assert len(sampler.ring) == 2  # fresh now: answered from memory
