"""A valid ad whose record is deleted right after the worker created it from the message is never called poison
(review31 R7): the record is created once more, and if it is gone again the delivery is handed back (a storage
error: ``nak`` uncharged), never terminated as ``no_record``. Real nats-server; the deletes are real KV deletes, as
an operator's ``nats kv del`` or the full bucket's discard make them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import nats
import pytest
from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import QueueUnavailable
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import AdStore, encode
from gamead_core.worker.records import read_record
from tests.support import ad


class _Deleting(AdStore):
    """The real store, whose record is deleted (a real KV delete) right after each of its first ``times`` creates."""

    def __init__(self, nc: object, js: object, times: int) -> None:
        super().__init__(nc, js)  # type: ignore[arg-type]
        self.times = times
        self.creates = 0

    async def create(self, record: AdRecord, payload: bytes | None = None) -> int:
        revision = await super().create(record, payload)
        self.creates += 1
        if self.creates <= self.times:
            await (await self.js.key_value(names.ADS_BUCKET)).delete(record.id)
        return revision


def _delivery(ad_id: str, body: bytes) -> Msg:
    """A redelivery (``num_delivered`` 2) of ``ad_id``'s work message, as JetStream hands it to a worker."""
    ns = int(time.time() * 1e9)
    return Msg(_client=None, subject=names.level_subject(3), headers={names.HDR_AD_ID: ad_id},  # type: ignore[arg-type]
               data=body, reply=f"$JS.ACK.{names.ADS_STREAM}.workers.2.7.7.{ns}.0")


@pytest.mark.parametrize("deleted", [1, 2])
def test_a_record_deleted_right_after_its_recreate_is_never_called_poison(
    fresh_nats: Callable[[], EmbeddedNats], deleted: int
) -> None:
    server = fresh_nats()
    ad_id = new_ad_id()
    record = AdRecord(id=ad_id, status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(),
                      ad=AdSubmission.model_validate(ad("Vanishing")))

    async def main() -> tuple[AdStore, object]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, GameadSettings())
            store = _Deleting(nc, js, deleted)
            try:
                return store, (await read_record(store, _delivery(ad_id, encode(record)), ad_id, max_attempts=5))
            except Exception as exc:  # noqa: BLE001 - what the worker would see
                return store, exc
        finally:
            await nc.close()

    store, got = asyncio.run(main())
    if deleted == 1:  # created once more: the ad is analysed (before: NotAnAd "no_record", terminated, lost)
        assert getattr(got, "record", None) is not None and got.record.id == ad_id, got  # type: ignore[attr-defined]
        assert store.creates == 2
    else:  # gone again: handed back uncharged as our storage failing, comes back later
        assert isinstance(got, QueueUnavailable), got
        assert "vanished" in str(got)
