"""attack47 F6 leftovers: every count a refusal says has thousands separators (``65,536``), as every other count the
service and the CLI print (regress44 F7): the records bucket's, ``nats.max_pending_bytes``', the DLQ pattern's
length and RE2 program size, and the header-field count. Pure: no servers."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from gamead_core.api.http_limits import HttpLimits
from gamead_core.api.records_gate import records_refusal
from gamead_core.api.routes_batch import check_room
from gamead_core.dlq_pattern import compile_pattern
from gamead_core.errors import OutboundFull
from tests.unit.test_http_limits import connected, echo_length


def test_the_records_bucket_refusal_separates_its_counts() -> None:
    records = {"refusing": True, "bytes": 1_000_000_000, "maxBytes": 1_073_741_824, "recordsBeforeLive": 12_345,
               "keys": 2_500_000}
    sampler = SimpleNamespace(records=records, records_at=time.monotonic())
    refusal = records_refusal(SimpleNamespace(state=SimpleNamespace(stats_sampler=sampler)))
    assert refusal is not None
    assert "records.max_bytes = 1,073,741,824" in refusal.message, refusal.message
    assert "only 12,345 of its 2,500,000 records" in refusal.message, refusal.message


def test_the_pending_bytes_refusal_separates_its_counts() -> None:
    with pytest.raises(OutboundFull) as caught:
        check_room(63_950_000, 40_000, 64_000_000)
    assert ("63,950,000 bytes wait to be sent and the batch would add ~80,000 (its records and messages), over "
            "nats.max_pending_bytes = 64,000,000") in caught.value.message, caught.value.message


def test_the_dlq_pattern_refusals_separate_their_counts() -> None:
    with pytest.raises(ValueError, match="the pattern is 1,201 characters; the limit is 1,000"):
        compile_pattern("a" * 1_201)
    with pytest.raises(ValueError) as caught:
        compile_pattern(".{1,900}")
    said = str(caught.value)
    assert "RE2 instructions; the limit is 5,000 (" in said, said
    count = said.split("compiles to ")[1].split(" RE2")[0]
    assert "," in count and int(count.replace(",", "")) > 5_000, said


def test_the_header_count_refusal_separates_its_count() -> None:
    limits = HttpLimits(max_request_line=256, max_header_bytes=65_536, max_headers=1_000, read_timeout=60)

    async def scenario() -> bytes:
        proto, transport = connected(echo_length, limits)
        fields = b"".join(b"X-%d: v\r\n" % i for i in range(1_001))
        proto.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
        for _ in range(50):
            await asyncio.sleep(0)
        proto.connection_lost(None)
        return bytes(transport.out)

    out = asyncio.run(scenario())
    assert b"431" in out.split(b"\r\n")[0] and b"more than 1,000 header fields (api.max_headers)" in out, out
