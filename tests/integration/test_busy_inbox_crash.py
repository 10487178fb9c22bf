"""An ad a long poll brings to a worker with no free slot is in that worker's hands: when the worker dies, its
recovery hands the ad back at once, not JetStream's ack_wait later (crashflake50).

A worker whose slots an ad fills (or one whose gate a suspect ad blocks, running alone) keeps the long polls it placed
while idle on the other levels (churn52: none goes back on the level that ad came from, no room for it:
:mod:`gamead_core.queue.poll_room`). Before, an ad delivered to it waited in the puller's inbox, neither held nor
announced in the registry (``holding``) nor kept alive, until a slot freed; a crash meanwhile (the poison-pill test's
crash loop at load 20-30: an innocent ad ``queued`` for 160 s) left it to the consumer's ``ack_wait`` (300 s here)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, start_api, start_worker, wait_for, wait_terminal

FAST_REGISTRY = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5", "GAMEAD_REGISTRY__TTL": "3"}
#: far above every deadline below: an ad that finishes in time was handed back by a recovery, not by ack_wait
LONG_ACK_WAIT = {"GAMEAD_QUEUE__ACK_WAIT": "300"}
LEVEL = 3
#: the second ad's level: its long poll, placed while the worker was idle, still waits (level 3's brought the first)
SECOND = 4


def _delivered(url: str) -> int:
    """Deliveries the second ad's level's consumer has made so far (its first, and any again)."""

    async def main() -> int:
        nc = await nats.connect(url)
        try:
            info: Any = await nc.jetstream().consumer_info(names.work_stream(), names.level_consumer(SECOND))
            return int(info.delivered.consumer_seq or 0)
        finally:
            await nc.close()

    return asyncio.run(main())


@pytest.mark.timeout(120)
def test_an_ad_a_busy_worker_was_given_comes_back_at_once_when_it_dies(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path,
) -> None:
    nats_url = fresh_nats().url
    api, url = start_api(nats_url, tmp_path, **LONG_ACK_WAIT, **FAST_REGISTRY)
    procs.append(api)
    # one slot, a 30 s analysis: the first ad fills it; the second comes to a long poll placed while it was idle
    busy = start_worker(nats_url, tmp_path, worker_id="busy", concurrency=1, ready=True,
                        GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="30000", **FAST_REGISTRY, **LONG_ACK_WAIT)
    procs.append(busy)
    with httpx.Client(base_url=url, timeout=20) as http:
        def submit(title: str, level: int = LEVEL) -> str:
            resp = http.post("/ads", json=ad(title, level))
            assert resp.status_code == 202, resp.text
            return str(resp.json()["id"])

        first = submit("Long Analysis")
        wait_for(lambda: http.get(f"/ads/{first}").json()["status"] == "processing", timeout=30,
                 what="the busy worker to run the first ad")
        second = submit("Waits Behind It", SECOND)
        # delivered to the busy worker (the only one): before, it waited in its inbox, unannounced
        wait_for(lambda: _delivered(nats_url) >= 1, timeout=30, what="the second ad delivered to the busy worker")
        busy.kill()  # as an OOM kill: no drain, no hand-back of its own (returns once it is reaped)
        procs.append(start_worker(nats_url, tmp_path, worker_id="rescuer", concurrency=2, **FAST_REGISTRY,
                                  **LONG_ACK_WAIT))
        # the rescuer's reaper sees the busy worker's entry expire (registry.ttl 3 s) and recovers what it held
        record = wait_terminal(http, second, timeout=60)
        assert record["status"] == "completed", record
        assert record["attempts"] == 1, "the ad waiting behind the crash was charged for it"
