"""review46 F3: a start whose claim's write went unanswered (``Claimed(written=False)``: NATS slow or a stream
leader change at its publish) goes on to its first heartbeat (:func:`gamead_core.worker.reaper.adopt_predecessor`);
a rival start's write landed instead, so that first put finds the key another process's (``id_lost``). It was
logged as a WARNING, "first heartbeat not written (the heartbeats try again)", and the worker started and pulled
ads under an id a live process holds, for up to a heartbeat interval, until its beat loop ended it exit 5. Now the
start ends there, exit 5, before it pulls anything. Real nats-server.

Figure: (adopt_predecessor raised ConfigError, the key's holder): before (False, the rival's); now (True, the
rival's)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import nats

from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.registry.claim import Claimed
from gamead_core.registry.kv import Registry
from gamead_core.store.ads import AdStore
from gamead_core.worker.reaper import adopt_predecessor
from tests.integration.test_node_views import worker_entry
from tests.integration.test_registry_put_race import refusal_and_holder


def test_a_start_whose_unanswered_claim_lost_ends_before_it_pulls(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    url = fresh_nats().url

    async def scenario() -> tuple[str, float]:
        nc = await nats.connect(url)
        try:
            settings = GameadSettings(registry={"ttl": 10.0, "heartbeat_interval": 0.5})
            late, rival = (Registry(nc, nc.jetstream(), settings.registry) for _ in range(2))
            t0 = time.time()
            dead = worker_entry("dup", started=t0 - 100)
            await Registry(nc, nc.jetstream(), settings.registry).put(dead)  # a dead holder's last entry
            seq, _ = await late.revision("dup")
            late.owner.taken_over("dup", seq)  # its claim's put_over(seq) unanswered (claim._write_over)
            await rival.put_over(worker_entry("dup", started=t0 - 1), seq)  # the rival's landed
            return await refusal_and_holder(adopt_predecessor(
                nc, AdStore(nc, nc.jetstream()), late, settings, worker_entry("dup", started=t0 - 2),
                Claimed(None, written=False)), rival, t0)
        finally:
            await nc.close()

    refused, holder_started = asyncio.run(scenario())
    assert refused and round(holder_started) == -1, (refused, holder_started)
    # review46 F7: its line said "while this one wrote no heartbeat (frozen or paused …)": this one never ran
    assert "before this one's first heartbeat was written" in refused and "frozen" not in refused, refused
