"""A batched ad writes what a single ``POST /ads`` writes (issue 14.3, the batch path's hand-built bytes): its KV
record is the model's own encoding of a ``queued`` record, the work message carries those very bytes, and the
message's headers are the single path's (``Nats-Msg-Id``, ``Gamead-Ad-Id``, ``Gamead-Record-Revision`` = the
record's KV revision), so workers and ``gamead doctor`` read both alike, plus the atomic batch's own
(``Nats-Batch-*``, NATS ADR-50). Real nats-server (a fresh one)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.intake import Queued
from gamead_core.models import AdStatus, AdSubmission
from gamead_core.store.ads import decode, encode
from tests.support import ad, fresh_intake


@pytest.mark.parametrize("atomic", [False, True], ids=["ack-per-ad", "atomic-batch"])
def test_a_batched_ad_writes_the_bytes_and_headers_a_single_submit_writes(
        fresh_nats: Callable[[], EmbeddedNats], atomic: bool) -> None:
    server = fresh_nats()
    ads = [AdSubmission.model_validate(ad("Batched \"quoted\" é\tad", priority=2, targetAudience=[" teens "])),
           AdSubmission.model_validate(ad("Batched plain", priority=5))]

    async def written() -> tuple[list[Any], Any, list[tuple[bytes, int, bytes, dict[str, str]]]]:
        async with fresh_intake(server.url) as (js, _store, intake):
            intake.atomic.enabled = atomic  # api.batch_atomic (auto: on replicated streams only)
            single = await intake.submit(AdSubmission.model_validate(ad("Single", priority=3)))
            results = await intake.submit_many(ads)
            kv = await js.key_value(names.ADS_BUCKET)
            seen = []
            for seq in range(1, 4):  # the work stream holds the single ad's message, then the batch's two
                msg = await js.get_msg(names.ADS_STREAM, seq)
                entry = await kv.get(msg.headers[names.HDR_AD_ID])
                seen.append((entry.value, entry.revision, msg.data, dict(msg.headers)))
            return results, single, seen

    results, single, seen = asyncio.run(written())
    assert all(type(r) is Queued and not r.duplicate for r in results), results
    (single_value, single_rev, single_data, single_headers), *batched = seen
    batches: list[dict[str, str]] = []
    assert single_data == single_value == encode(single.record)
    for result, sent, (value, revision, data, headers) in zip(results, ads, batched, strict=True):
        record = decode(value)
        assert (record.id, record.status, record.priority, record.ad) == (result.id, AdStatus.QUEUED,
                                                                          sent.priority, sent)
        assert record.submitted_at == result.submitted_at and record.attempts == 0
        assert value == encode(record)  # the model's own bytes for that record
        assert data == value  # the message carries the record as created
        # the batch's messages are one atomic batch (NATS ADR-50): its headers come on top of the single path's
        batch = {k: headers.pop(k) for k in (names.HDR_BATCH_ID, names.HDR_BATCH_SEQUENCE, names.HDR_BATCH_COMMIT)
                 if k in headers}
        batches.append(batch)
        assert headers == {names.HDR_MSG_ID: result.id, names.HDR_AD_ID: result.id,
                           names.HDR_RECORD_REVISION: str(revision)}
        assert list(headers) == list(single_headers)  # the single path's headers, in its order
    assert names.HDR_BATCH_ID not in single_headers
    if not atomic:
        assert batches == [{}, {}]
        return
    assert [b[names.HDR_BATCH_SEQUENCE] for b in batches] == ["1", "2"]
    assert batches[0][names.HDR_BATCH_ID] == batches[1][names.HDR_BATCH_ID]
    assert [b.get(names.HDR_BATCH_COMMIT) for b in batches] == [None, "1"]
