"""An ad a long poll brings to a worker with no free slot is in that worker's hands: when the worker dies, its
recovery hands the ad back at once, not JetStream's ack_wait later (crashflake50).

A worker whose slots an ad fills (or one whose gate a suspect ad blocks, running alone) keeps the long polls it placed
while idle on the other levels (churn52: none goes back on the level that ad came from, no room for it:
:mod:`gamead_core.queue.poll_room`). Before, an ad delivered to it waited in the puller's inbox, neither held nor
announced in the registry (``holding``) nor kept alive, until a slot freed; a crash meanwhile (the poison-pill test's
crash loop at load 20-30: an innocent ad ``queued`` for 160 s) left it to the consumer's ``ack_wait`` (300 s here).

ci53: the test killed the worker once nats-server counted the second ad delivered, and nothing more. Twice that raced
what it meant to show (2 of 14 runs at load ~20): the kill landed 28 ms after the long poll's answer reached the worker,
before its hand-back (README, "What you see on a worker's death": a delivery not yet announced nor handed back comes
back at ``ack_wait``), and the ad waited 300 s (CI's ``last: None``); or the worker had placed no long poll on the
second ad's level yet (or it had expired: 2.25 s with ``registry.ttl`` 3), so the second ad came 30 s later by a pull
as the first ended, and the kill charged it. Now the first ad is submitted once the worker long-polls both levels,
its long polls live 15 s, and the kill comes once the second ad is in its hands: handed back (nats-server's nak
advisory) or announced held (its registry entry), as crashflake50's fix does at once and the bug never did."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.registry.nodes import node_key
from gamead_core.worker import naks_seen
from tests.support import Proc, SubjectTap, ad, start_api, start_worker, wait_for, wait_terminal

#: ttl 20 s: the busy worker's long polls may live 15 s (at most ttl − 1.5 × heartbeat: gamead_core.worker.idle),
#: and a reaper starting after the kill still reads its entry before it expires (a held ad is recovered from it)
FAST_REGISTRY = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5", "GAMEAD_REGISTRY__TTL": "20"}
#: the busy worker's long polls, placed as it starts, still wait when the second ad comes (with 2.25 s they had expired
#: under load: it then came by a pull as the first ad ended, 30 s later, a kill racing its start)
LONG_POLLS = {"GAMEAD_QUEUE__IDLE_WAIT": "15"}
#: far above every deadline below: an ad that finishes in time was handed back by a recovery, not by ack_wait
LONG_ACK_WAIT = {"GAMEAD_QUEUE__ACK_WAIT": "300"}
LEVEL = 3
#: the second ad's level: its long poll, placed while the worker was idle, still waits (level 3's brought the first)
SECOND = 4


def _consumer(url: str, level: int) -> Any:
    """The level's consumer as nats-server sees it now."""

    async def main() -> Any:
        nc = await nats.connect(url)
        try:
            return await nc.jetstream().consumer_info(names.work_stream(), names.level_consumer(level))
        finally:
            await nc.close()

    return asyncio.run(main())


def _delivered(url: str) -> int:
    """Deliveries the second ad's level's consumer has made so far (its first, and any again)."""
    return int(_consumer(url, SECOND).delivered.consumer_seq or 0)


def _held(entries: SubjectTap, ad_id: str) -> bool:
    """Whether a write of the worker's registry entry (heartbeat or held-ads announcement) names ``ad_id`` held."""
    return any(ad_id in {h.get("adId") for h in json.loads(data).get("holding", [])}
               for data in list(entries.messages) if data)


@pytest.mark.timeout(120)
def test_an_ad_a_busy_worker_was_given_comes_back_at_once_when_it_dies(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path,
) -> None:
    nats_url = fresh_nats().url
    api, url = start_api(nats_url, tmp_path, **LONG_ACK_WAIT, **FAST_REGISTRY)
    procs.append(api)
    # one slot, a 30 s analysis: the first ad fills it; the second comes to a long poll placed while it was idle
    busy = start_worker(nats_url, tmp_path, worker_id="busy", concurrency=1, ready=True,
                        GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="30000", **FAST_REGISTRY, **LONG_ACK_WAIT, **LONG_POLLS)
    procs.append(busy)
    # idle: its long polls wait on the first ad's level and the second's (not yet placed, the first ad came by a pull)
    wait_for(lambda: all(_consumer(nats_url, level).num_waiting for level in (LEVEL, SECOND)), timeout=30,
             what="the busy worker to long-poll both levels")
    naked = SubjectTap(nats_url, naks_seen.SUBJECT)  # nats-server's advisory of each nak it took
    entries = SubjectTap(nats_url, names.kv_prefix(names.REGISTRY_BUCKET) + node_key("busy"))
    with naked, entries, httpx.Client(base_url=url, timeout=20) as http:
        def submit(title: str, level: int = LEVEL) -> str:
            resp = http.post("/ads", json=ad(title, level))
            assert resp.status_code == 202, resp.text
            return str(resp.json()["id"])

        first = submit("Long Analysis")
        wait_for(lambda: http.get(f"/ads/{first}").json()["status"] == "processing", timeout=30,
                 what="the busy worker to run the first ad")
        second = submit("Waits Behind It", SECOND)
        # at once: by a pull it would come only as the first ad ends (30 s)
        wait_for(lambda: _delivered(nats_url) >= 1, timeout=10, what="the second ad delivered to the busy worker")
        # in its hands (before, it waited in its inbox, unannounced): handed back, or held and announced
        wait_for(lambda: naked.count or _held(entries, second), timeout=10,
                 what="the busy worker to hand the second ad back or announce it held")
        busy.kill()  # as an OOM kill: no drain, no hand-back of its own (returns once it is reaped)
        procs.append(start_worker(nats_url, tmp_path, worker_id="rescuer", concurrency=2, **FAST_REGISTRY,
                                  **LONG_ACK_WAIT))
        # handed back, it is in the queue; held, the rescuer's reaper sees the busy worker's entry expire and
        # recovers it (registry.ttl 20 s)
        record = wait_terminal(http, second, timeout=60)
        assert record["status"] == "completed", record
        assert record["attempts"] == 1, "the ad waiting behind the crash was charged for it"
