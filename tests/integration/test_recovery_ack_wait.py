"""A dead worker's held ads are judged by the ``ack_wait`` of the consumer that delivered them, read from the
server, not by the recovering process's ``queue.ack_wait``. Real nats-server, a real delivery, the recovery as
the reaper calls it (:func:`gamead_core.worker.reaper.recover`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone

import nats
import pytest

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import HeldAd, NodeInfo
from gamead_core.store.ads import AdStore, encode
from gamead_core.worker.budget import delivery_id
from gamead_core.worker.consumer_ack_wait import ANNOUNCED, CONSUMER, SETTINGS, AckWaits
from gamead_core.worker.reaper import recover
from tests.support import ad

CONSUMERS_ACK_WAIT = 300.0  #: seconds, the level consumers' ack_wait (as ``gamead up`` made them)
RECOVERER_ACK_WAIT = 30.0  #: seconds, the recovering process's own ``queue.ack_wait``
DIED_AGO = 60.0  #: seconds since the dead worker's last heartbeat: past 2/3 of 30 s, well within 2/3 of 300 s


def test_a_dead_workers_waiting_ad_is_handed_back_by_the_consumers_ack_wait(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """The level consumers redeliver after 300 s; the recovering process is configured with 30 s, and the dead
    worker did not announce its own. It died 60 s ago holding one pulled, not started ad. JetStream cannot have
    redelivered it yet (300 s), so the recovery hands it back at once: the next pull gets it (delivery 2).
    Before, the window was judged with the recoverer's 30 s (closed after 20 s), the ad was left, and it
    waited the consumers' whole 300 s."""
    server = fresh_nats()
    made = GameadSettings.model_validate({"queue": {"ack_wait": CONSUMERS_ACK_WAIT}})
    recovering = GameadSettings.model_validate({"queue": {"ack_wait": RECOVERER_ACK_WAIT}})

    async def main() -> tuple[int, AdRecord]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, made)
            store = await AdStore.open(nc, js)
            record = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                              ad=AdSubmission.model_validate(ad("Held", 2)))
            revision = await store.create(record)
            await js.publish(names.level_subject(2), encode(record), headers={
                names.HDR_MSG_ID: record.id, names.HDR_AD_ID: record.id, names.HDR_RECORD_REVISION: str(revision)})
            sub = await js.pull_subscribe_bind(names.level_consumer(2), names.ADS_STREAM)
            [msg] = await sub.fetch(1, timeout=5)  # the dead worker's delivery, never acknowledged
            beat = datetime.fromtimestamp(time.time() - DIED_AGO, timezone.utc)
            dead = NodeInfo(
                id="local-0", role="worker", host="h", pid=4242, version="t", started_at=beat, heartbeat_at=beat,
                holding=[HeldAd(ad_id=record.id, delivery=delivery_id(msg.metadata.sequence.stream, 1),
                                ack_subject=msg.reply)],
            )
            await recover(nc, store, dead, recovering)
            [again] = await sub.fetch(1, timeout=10)  # handed back: available now, not in 300 s
            return again.metadata.num_delivered, (await store.get(record.id)).record
        finally:
            await nc.close()

    try:
        delivered, record = asyncio.run(main())
    except nats.errors.TimeoutError:
        raise AssertionError("the dead worker's ad was not handed back: it waits the consumer's 300 s "
                             "ack_wait (judged with the recovering process's 30 s)") from None
    assert delivered == 2
    assert record.status == AdStatus.QUEUED and record.attempts == 0  # a waiting ad: handed back uncharged


def test_a_consumer_that_cannot_be_read_falls_back_to_the_announced_ack_wait_and_says_so(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture,
) -> None:
    """Only when the consumer cannot be read (here: it was deleted) is a delivery judged by the ack_wait the dead
    worker announced, then the recovering process's own; the log says which and why. A readable consumer is
    read once per recovery however many of its deliveries the dead worker held."""
    server = fresh_nats()
    settings = GameadSettings.model_validate({"queue": {"ack_wait": CONSUMERS_ACK_WAIT}})
    subject = f"$JS.ACK.{names.work_stream(0)}.{names.level_consumer(4)}.1.7.7.1.0"

    async def main() -> list[tuple[float, str]]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, settings)
            read = AckWaits(nc, timeout=2.0)
            got = [await read.of(subject, 45.0, RECOVERER_ACK_WAIT)]
            await js.delete_consumer(names.ADS_STREAM, names.level_consumer(4))
            other = await nats.connect(server.url)  # another process: nothing cached
            try:
                missing = AckWaits(other, timeout=2.0)
                got += [await missing.of(subject, 45.0, RECOVERER_ACK_WAIT), await missing.of(subject, None, 12.0)]
            finally:
                await other.close()
            return got
        finally:
            await nc.close()

    with caplog.at_level(logging.WARNING, logger="gamead_core.worker.consumer_ack_wait"):
        got = asyncio.run(main())
    assert got == [(CONSUMERS_ACK_WAIT, CONSUMER), (45.0, ANNOUNCED), (12.0, SETTINGS)]
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1, warned  # one failed read per consumer per recovery
    assert f"could not read the ack_wait of consumer {names.level_consumer(4)}" in warned[0]
    assert "announced 45 s" in warned[0], warned
