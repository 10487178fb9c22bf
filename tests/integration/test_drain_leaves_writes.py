"""A stop's deadline for the shielded writes does not cut them (reap45 item 1).

The drain waited for the worker's shielded writes and acks under a deadline (``within(shielded.wait(), …)``):
past it, ``within`` cancelled the wait, and the ``asyncio.gather`` inside cancelled every shielded write and ack
still running, the very ones the shield is for. A settle round whose record write was slow to be answered (NATS
slow at the stop) was cut between its write and its ack: the record ``completed``, its message never acknowledged,
so redelivered after ``ack_wait`` (a second delivery, a second worker's read). Now the deadline only ends the wait:
the writes are left running through the rest of the stop (the clean stop's mark and note, the NATS drain), and a
WARNING names the ads still being written (field ``ads``). Real nats-server, its publishes to the ads bucket held
by a proxy (:class:`tests.nats_filter.PublishFilter`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import nats
import pytest

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.logs import ad_fields
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import AdStore, Versioned
from gamead_core.worker.analyzer import analyze
from gamead_core.worker.budget import delivery_id
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.drain import LastWrites, drain
from gamead_core.worker.settle import Settler
from gamead_core.worker.shield import Shield
from gamead_core.worker.storage_pause import StoragePause
from tests.nats_filter import PublishFilter
from tests.support import queue_ad
from tests.waits import until

HELD = 3.0  #: s the record's write is held on its way to nats-server
REQUEST_TIMEOUT = 0.25  #: s; with drain_timeout 0 the drain waits max(2 × this, 3 − 2) = 1 s for the shielded writes
DEADLINE = 20.0  #: s any one wait may take


def test_a_settle_round_past_the_drain_deadline_still_acknowledges_its_ad(
        fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter], caplog: pytest.LogCaptureFixture) -> None:
    """One ad analysed; its completed record's write held 3 s by the link, its handler cancelled by the drain
    (``drain_timeout`` 0), whose wait for the shielded writes ends 1 s later. The round goes on once the write is
    answered: the record ``completed`` and the message acknowledged (nothing pending on the level consumer), and
    the drain's WARNING names the ad. Before (drain.py/shield.py of 4a4561f8): the round cancelled at the drain's
    deadline, the record written but its message left unacknowledged (1 pending, redelivered after ack_wait)."""
    server = fresh_nats()
    link = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(link)

    async def main() -> tuple[str, str, int]:
        nc = await nats.connect(link.url)
        watch = await nats.connect(server.url)
        try:
            js = nc.jetstream(timeout=DEADLINE)
            await ensure_topology(js, GameadSettings())
            store = await AdStore.open(nc, js)
            record, revision = await queue_ad(store, js, "Held at the stop")
            sub = await js.pull_subscribe_bind(names.level_consumer(3), names.ADS_STREAM)
            (msg,) = await sub.fetch(1, timeout=5)
            stats, shielded = WorkerStats(), Shield()
            settle = Settler(store, DeadLetters(js), GameadSettings().worker, worker_id="held", stats=stats,
                             pause=StoragePause(stats), shielded=shielded, ack_wait=60)
            delivery = delivery_id(msg.metadata.sequence.stream, 1)

            async def handler() -> None:
                with ad_fields(ad_id=record.id):
                    await settle.complete(msg, Versioned(settle.started(record, delivery), revision),
                                          analyze(record.ad), delivery)

            link.hold(names.kv_prefix(names.ADS_BUCKET), HELD)
            job = asyncio.create_task(handler())
            await until(lambda: settle.rounds.rounds == 1, timeout=DEADLINE, what="the round under way")
            await drain({job}, asyncio.Event(), LastWrites(0.0), shielded, REQUEST_TIMEOUT)
            wjs = watch.jetstream()

            async def pending() -> int:
                return (await wjs.consumer_info(names.ADS_STREAM, names.level_consumer(3))).num_ack_pending

            async def acked() -> bool:
                return await pending() == 0

            try:  # the write is answered HELD s after it was sent; a cut round never acknowledges the message
                await until(acked, timeout=HELD + 7.0, what="the message acknowledged")
            except AssertionError:
                pass
            status = (await (await AdStore.open(watch, wjs)).get(record.id)).record.status
            return record.id, str(status.value), await pending()
        finally:
            await nc.close()
            await watch.close()

    with caplog.at_level(logging.INFO, logger="gamead_core"):
        ad_id, status, pending = asyncio.run(main())
    assert status == "completed"
    assert pending == 0, "the settle round was cut at the drain's deadline: its ad's message left unacknowledged"
    still = [r for r in caplog.records if "still running" in r.getMessage()]
    assert still and ad_id in getattr(still[0], "ads", []), [r.getMessage() for r in caplog.records]
