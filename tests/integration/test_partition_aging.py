"""chaos48 F2: with ``queue.partitions`` > 1 the aging order must hold while timed retries wait, as at 1 partition.

A level's view counted the due retries of every partition, but its pulls went to the partition with the oldest *new*
ad first, and took the whole want there: a level whose retries waited in other partitions kept scoring by their wait
while its pulls served its fresh ads in a row, ahead of a less urgent ad that was due long before them (chaos48: 3,622
of 11,250 first deliveries against the README's aging rule at partitions 3, 0 at partitions 1).

A real nats-server and the real topology; the records' ``retryAt`` are a dict (``waiting_since``); the ads are started
as the worker's loop starts them (:func:`tests.integration.test_backlog_hints._drain`, each ad finishing at once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import nats
import pytest

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.atomic import publish_batch
from gamead_core.queue.pull import AgingPuller
from gamead_core.queue.topology import ensure_topology
from tests.integration.test_backlog_hints import _drain

STEP = 1.0  #: queue.aging_step (s)
#: the README's margin for the bound: one analysis (none here) + the age of the view, up to 1 s for redeliveries
MARGIN = 1.0
GAP = 4.0  #: the fresh P2 ads come this long after the P4 ad: 2 steps + the margin + 1 s


def against_the_rule(started: list[tuple[str, int, float]], step: float, margin: float) -> list[tuple[str, str]]:
    """(late ad, overtaking ad) pairs of ``started`` ((ad id, level, due epoch s) in start order) against the README's
    bound: an ad due at priority p starts before every ad of priority q < p due more than (p − q) × step (+ margin)
    after it."""
    bad = []
    for i, (late, p, due) in enumerate(started):
        for ahead, q, their_due in started[:i]:
            if q < p and their_due - due > (p - q) * step + margin:
                bad.append((late, ahead))
    return bad


def _scenario(server: EmbeddedNats, partitions: int) -> list[tuple[str, int, float]]:
    """A P4 ad published at t0; P2 ads in every partition but the first, delivered and handed back with a 0.2 s
    delay at t0 (timed retries: due at t0 + 0.2 by their records); at t0 + GAP, 24 fresh P2 ads in the first
    partition. Then one worker with 2 slots drains the queue. Returns (ad id, level, due) in start order."""
    settings = GameadSettings(queue={"idle_wait": 120, "aging_step": STEP, "partitions": partitions})
    retry_parts = [p for p in range(partitions) if p] or [0]

    async def go() -> list[tuple[str, int, float]]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_topology(js, settings)
        due: dict[str, float] = {}
        retry_at: dict[str, float] = {}
        try:
            t0 = time.time()
            await js.publish(names.level_subject(4), b"{}", headers={names.HDR_AD_ID: "p4"})
            due["p4"] = t0
            for p in retry_parts:
                ids = [f"retry-{p}-{i}" for i in range(2)]
                for ad_id in ids:
                    await js.publish(names.level_subject(2, p), b"{}", headers={names.HDR_AD_ID: ad_id})
                sub = await js.pull_subscribe_bind(names.level_consumer(2, p), names.work_stream(p))
                for msg in await sub.fetch(2, timeout=5):
                    ad_id = msg.headers[names.HDR_AD_ID]
                    retry_at[ad_id] = due[ad_id] = time.time() + 0.2
                    await msg.nak(delay=0.2)
                await sub.unsubscribe()
            await asyncio.sleep(GAP - (time.time() - t0))  # builds the scenario: the P4 ad ages (no state to wait on)
            fresh = [f"fresh-{i}" for i in range(24)]
            await publish_batch(js, [(names.level_subject(2), b"{}", {names.HDR_AD_ID: i}) for i in fresh],
                                stream=names.work_stream(0), timeout=10)
            for ad_id in fresh:
                due[ad_id] = time.time()

            async def waiting_since(ad_id: str, seq: int, published: float, mine: bool) -> float | None:
                return retry_at.get(ad_id)  # a retry's record says retryAt; any other delivered ad is in our hands

            puller = AgingPuller(nc, js, settings.queue, waiting_since=waiting_since)
            await puller.start()
            try:
                got = await _drain(puller, len(due), free=2, step=STEP)
            finally:
                await puller.stop()
            ids = [m.headers[names.HDR_AD_ID] for m in got]
            return [(i, names.level_of_subject(m.subject), due[i]) for i, m in zip(ids, got)]
        finally:
            await nc.close()

    return asyncio.run(go())


@pytest.mark.parametrize("partitions", [1, 3])
def test_timed_retries_in_other_partitions_do_not_let_fresh_ads_overtake_a_patient_one(
        fresh_nats: Callable[[], EmbeddedNats], partitions: int) -> None:
    """Figure before (partitions 3): the P4 ad, due 4 s before the fresh P2 ads, started after all 24 of them (24
    pairs against the rule: the P2 pulls went to the partition of the fresh ads while the level scored by its retries
    waiting in the others); partitions 1: 0. Now 0 at both."""
    started = _scenario(fresh_nats(), partitions)
    assert sorted(i for i, _, _ in started) == sorted(["p4", *(f"fresh-{i}" for i in range(24)),
                                                      *(f"retry-{p}-{i}" for p in ([1, 2] if partitions > 1 else [0])
                                                        for i in range(2))])
    bad = against_the_rule(started, STEP, MARGIN)
    assert not bad, f"{len(bad)} pairs against the aging rule: {bad[:5]}; order {[i for i, _, _ in started]}"
    order = [i for i, _, _ in started]
    assert order.index("p4") < order.index("fresh-0"), order
