"""``GET /ads`` orders and filters records by their head, read off the front of the JSON (list37,
``gamead_core.store.record_head``): it must give what decoding the record gives, or None (then the record is
decoded whole). Figure with the pattern requiring the fraction (pydantic writes none for a whole second,
``…T19:05:01Z``): 5 of 20 records (``micro`` 0) gave no head, each decoded whole (~70 µs instead of ~2)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gamead_core.models import AdRecord, AdStatus, AdSubmission
from gamead_core.store.ads import encode
from gamead_core.store.listing import record_key
from gamead_core.store.record_head import record_head
from tests.support import SAMPLE_AD


@pytest.mark.parametrize("micro", [0, 1, 984_000, 999_999])
@pytest.mark.parametrize("status", list(AdStatus))
def test_the_head_is_what_the_decoded_record_says(micro: int, status: AdStatus) -> None:
    record = AdRecord(id="01m9174r7vxzys2mggpjpa76vq", status=status, priority=2, ad=AdSubmission.model_validate(
        SAMPLE_AD), submitted_at=datetime(2026, 12, 4, 19, 5, 1, micro, tzinfo=UTC))
    head = record_head(encode(record))
    assert head is not None
    assert ((head.micros, head.id), head.status, head.priority) == (record_key(record), status, 2)


@pytest.mark.parametrize("data", [
    b"not json at all", b'{"garbage": true}',
    b'{"id": "01m9174r7vxzys2mggpjpa76vq", "status": "queued", "priority": 3, "submittedAt": "2026-12-04T19:05:01Z"}',
    b'{"id":"01m9174r7vxzys2mggpjpa76vq","status":"sleeping","priority":3,"submittedAt":"2026-12-04T19:05:01Z"}',
    b'{"id":"01m9174r7vxzys2mggpjpa76vq","status":"queued","priority":3,"submittedAt":"2026-13-04T19:05:01Z"}',
    b'{"id":"01m9174r7vxzys2mggpjpa76vq","status":"queued","priority":3,"submittedAt":"2026-12-04T19:05:01+01:00"}',
])
def test_any_other_form_is_decoded_whole(data: bytes) -> None:
    assert record_head(data) is None
