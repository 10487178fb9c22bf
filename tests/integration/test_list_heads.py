"""``GET /ads`` reads each record's listing fields off the front of its JSON and decodes only the page's records
whole (list37: decoding every record of a 40,000-record window was the largest part of a page's cost). A record
whose front reads but whose whole does not (a value cut short) must still be skipped and counted as unreadable,
never listed or made a 500, and the page must still hold ``limit`` readable records and say there are more."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import nats

from gamead_core import names
from gamead_core.ad_ids import new_ad_id
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import encode
from gamead_core.store.listing import RecordsPage, records_page
from gamead_core.store.record_head import record_head
from tests.support import SAMPLE_AD


def test_a_record_cut_short_on_the_page_is_skipped_and_the_page_filled(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """Five readable records and, newest of all, one cut to its first 200 bytes (its front reads). Figure with the
    page's records that do not decode just dropped (no read again with every record decoded): 2 records listed of
    3, ``total`` 6, ``unreadable`` 0."""
    server = fresh_nats()
    ad = AdSubmission.model_validate(SAMPLE_AD)
    start = utcnow()
    records = [AdRecord(id=new_ad_id(), status=AdStatus.COMPLETED, priority=3, submitted_at=start + timedelta(
        seconds=i), ad=ad) for i in range(6)]
    cut = encode(records[-1])[:200]
    assert record_head(cut) is not None  # its front reads: only its whole decode tells

    async def run() -> RecordsPage:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, GameadSettings())
            for record in records[:-1]:
                await js.publish(names.kv_subject(names.ADS_BUCKET, record.id), encode(record))
            await js.publish(names.kv_subject(names.ADS_BUCKET, records[-1].id), cut)
            return await records_page(js, limit=3)
        finally:
            await nc.close()

    page = asyncio.run(run())
    assert [r.id for r in page.records] == [r.id for r in reversed(records[2:5])], page
    assert page.next_cursor is not None and page.total == 5, page
    assert page.unreadable == 1 and page.unreadable_ids == (records[-1].id,), page
