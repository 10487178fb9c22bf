"""A keyed ad redelivered before its API wrote its record (the keyed path publishes first) is not charged an attempt
nor called "gone" (attack33b F4: handed back from a prefetch buffer, it ended ``attempts 2`` for one analysis and a
WARNING blamed the full bucket or a delete). A keyed record that was deleted is still floored as before. Real
nats-server; the redelivery is a work message as JetStream hands it to a worker at its second delivery."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import nats
import pytest
from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.intake import ad_fingerprint, keyed_ad_id
from gamead_core.models import AdRecord, AdStatus, utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import AdStore, encode
from gamead_core.worker.records import read_record
from tests.support import submission


def _redelivery(ad_id: str, body: bytes) -> Msg:
    """The second delivery (``num_delivered`` 2) of ``ad_id``'s work message, stored now."""
    ns = int(time.time() * 1e9)
    return Msg(_client=None, subject=names.level_subject(3), headers={names.HDR_AD_ID: ad_id},  # type: ignore[arg-type]
               data=body, reply=f"$JS.ACK.{names.ADS_STREAM}.workers.2.7.7.{ns}.0")


def _keyed(key: str) -> AdRecord:
    ad = submission(title=f"Keyed {key}")
    return AdRecord(id=keyed_ad_id("anonymous", key), status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(), ad=ad,
                    idempotency_key=key, idempotency_fingerprint=ad_fingerprint(ad))


@pytest.mark.parametrize("deleted", [False, True])
def test_a_keyed_ad_redelivered_before_its_record_was_written_is_not_charged(
        fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture, deleted: bool) -> None:
    server = fresh_nats()
    record = _keyed(f"f4-{deleted}")

    async def main() -> int:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, GameadSettings())
            store = await AdStore.open(nc, js)
            other = AdRecord(id=new_ad_id(), status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(),
                             ad=submission(title="Written before"))
            await store.create(other)  # the records' stream holds a record older than the message: nothing dropped
            if deleted:  # the keyed record was written, then deleted (an operator's `nats kv del`)
                await store.create(record)
                await (await js.key_value(names.ADS_BUCKET)).delete(record.id)
            msg = _redelivery(record.id, encode(record))
            return (await read_record(store, msg, record.id, max_attempts=5)).record.attempts
        finally:
            await nc.close()

    with caplog.at_level(logging.INFO, logger="gamead_core.worker.runtime"):
        attempts = asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if record.id in r.getMessage()]
    if deleted:  # gone: floored as before (the budget never restarts whole at a drop: attack31a F1)
        assert attempts == 1 and "its record was gone at delivery 2" in lines[0], lines
    else:  # never written yet: the hand-back was no attempt (before: 1 charged, "gone … full record bucket")
        assert attempts == 0, lines
        assert lines == [f"ad {record.id}: its record was not written yet at delivery 2 (a keyed submit writes it "
                         "after its message): created from its work message, no attempt charged"], lines
