"""The node views say ``gone`` of a vanished node when the reaper judges it, on a real nats-server (left44 item 1).

A killed node whose last beat was stamped ahead of this clock (its first beat, before its host's first clock sample,
on a host whose clock is ahead) was held by the reaper at most ``registry.ttl`` after it found it absent (e0fc0799,
:attr:`~gamead_core.worker.reaper_view.RegistryView.lost_since`), but the views (``/v1/workers``, ``gamead top``,
``gamead_workers{state}``) kept listing it live until that stamp + ``registry.ttl``: 5 minutes for a host 5 minutes
ahead. Both now apply one rule (:func:`gamead_core.registry.gone.lost_early` with ``absent``).
"""

from __future__ import annotations

import asyncio
import time

import nats

from gamead_core.embedded import EmbeddedNats
from gamead_core.worker.reaper_view import RegistryView
from tests.integration.test_node_views import clocked_sampler, scraped_workers, server, worker_entry
from tests.waits import until

__all__ = ["server"]  # the fixture, shared with test_node_views

AHEAD = 300.0  #: seconds the killed node's host clock read ahead when it stamped its last beat


def test_a_killed_node_whose_beat_reads_ahead_is_gone_when_the_reaper_judges_it(server: EmbeddedNats) -> None:
    """Worker ``ahead-w`` beats once, stamped 300 s ahead, and dies: its entry expires (the bucket's ``max_age``,
    ``registry.ttl`` 2 s, counts from the put). The API's sampler and a reaper's view read the same listings at the
    same times (the sampler's clock set): found absent at ``t``, both keep it until ``t + 2 s`` and there the reaper
    judges it and the views list it ``gone`` (``/v1/workers``, ``/metrics``' ``gamead_workers{state="gone"}``).
    Without the fix (sampler.py of 41f8bf05) the views listed it ``idle`` at ``t + 2.1`` (until ``t + 302``)
    while the reaper had judged it."""
    async def scenario() -> None:
        nc = await nats.connect(server.url)
        try:
            registry, sampler, clock = clocked_sampler(nc)  # ttl 2 s
            view = RegistryView(grace=sampler.settings.registry.ttl, keep=120.0)

            async def read(at: float) -> tuple[str | None, list[str]]:
                """(state the views say of ``ahead-w`` at ``at``, the reaper's judgement of a listing then)."""
                clock.at = at
                await sampler.sample()
                listed = {n.id: n for n in await registry.list()}
                judged = view.deaths(listed, at, wall=at)  # the reaper's monotonic clock: the same seconds here
                view.read(listed, judged, at)
                states = {n["id"]: n["state"] for n in sampler.workers_payload()["items"]}
                return states.get("ahead-w"), [n.id for n in judged]

            await registry.put(worker_entry("ahead-w", age=-AHEAD, now=time.time()))
            assert await read(time.time()) == ("idle", [])  # listed, beating (its beat reads ahead)
            async def expired() -> bool:  # ~2 s after its put (the bucket's max_age)
                return "ahead-w" not in [n.id for n in await registry.list()]

            await until(expired, timeout=10.0, what="the killed worker's entry to expire")
            found = time.time()
            assert await read(found) == ("idle", [])  # absent: held by both (it may have been lost with the bucket)
            assert await read(found + 1.9) == ("idle", [])
            assert await read(found + 2.1) == ("gone", ["ahead-w"])  # ttl after it was found absent: both say so
            metric = await scraped_workers(sampler)
            assert metric["gone"] == 1 and sum(metric.values()) == 1, metric
        finally:
            await nc.close()

    asyncio.run(scenario())
