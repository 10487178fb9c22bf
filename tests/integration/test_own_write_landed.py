"""An outcome whose write landed while its answer was lost (a nats-server restart) is said to be written, not "not
written" (chaos47 F7).

The drill: 1 s after a nats-server restart under 150 ads/s, 14 ads at once logged `ad …: analysed under delivery
7412.1, but it is final or a later delivery runs it now: this outcome is not written (record completed, delivery
7412.1: acknowledged)`: the record was completed under that very delivery, by the worker's own write. Real
nats-server; the worker's settling step (:func:`settle_foreign`) on a real delivery whose record holds its own
outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import nats
import pytest

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import AdStore, encode
from gamead_core.worker.analyzer import analyze
from gamead_core.worker.budget import delivery_id
from gamead_core.worker.foreign import settle_foreign
from tests.support import ad

LEVEL = 2


def test_an_outcome_written_by_its_own_delivery_is_said_written_and_its_message_acknowledged(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture,
) -> None:
    server = fresh_nats()
    settings = GameadSettings()

    async def main() -> tuple[str, str, int]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, settings)
            store = await AdStore.open(nc, js)
            record = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=LEVEL, submitted_at=utcnow(),
                              ad=AdSubmission.model_validate(ad("Written Unanswered", LEVEL)))
            revision = await store.create(record)
            await js.publish(names.level_subject(LEVEL), encode(record), headers={
                names.HDR_MSG_ID: record.id, names.HDR_AD_ID: record.id, names.HDR_RECORD_REVISION: str(revision)})
            sub = await js.pull_subscribe_bind(names.level_consumer(LEVEL), names.ADS_STREAM)
            [msg] = await sub.fetch(1, timeout=10)
            delivery = delivery_id(msg.metadata.sequence.stream, 1)
            await store.update(record.model_copy(update={  # the worker's write: it landed, its answer was lost
                "status": AdStatus.COMPLETED, "attempts": 1, "delivery": delivery, "worker_id": "local-1",
                "started_at": utcnow(), "completed_at": utcnow(), "analysis": analyze(record.ad)}), revision)
            verdict = await settle_foreign(store, lambda step: step, msg, record.id, "analysed", 0.0)
            await nc.flush()
            waiting, deadline = -1, asyncio.get_running_loop().time() + 10
            while waiting != 0 and asyncio.get_running_loop().time() < deadline:  # the ack is taken by the server
                info = await js.consumer_info(names.ADS_STREAM, names.level_consumer(LEVEL))
                waiting = info.num_ack_pending + info.num_pending
                await asyncio.sleep(0 if waiting == 0 else 0.05)
            return record.id, verdict, waiting
        finally:
            await nc.close()

    with caplog.at_level(logging.INFO, logger="gamead_core.worker.settle"):
        ad_id, verdict, waiting = asyncio.run(main())
    assert verdict == "ack" and waiting == 0  # acknowledged: nothing comes back after ack_wait
    said = [r.getMessage() for r in caplog.records if ad_id in r.getMessage()]
    assert len(said) == 1, said
    assert "its outcome was written after all" in said[0] and "acknowledged" in said[0], said
    assert "not written" not in said[0], said
