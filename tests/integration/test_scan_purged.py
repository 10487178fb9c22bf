"""attack39c F3: a stream purged while a whole-stream read runs. The read had been sent part of it (the feed's
requests), then waited its timeout for the next message, asked NATS whether unread ones remained, heard none (the
purge took them) and ended quietly: a "complete" read of what it had been sent, matching no state of the stream.
Now :class:`~gamead_core.queue.scan.ScanIncomplete` (503 ``scan_incomplete``, retry: the stream as it now is), in
each reader that asks (``scan.still_unread``: read_stream, read_in_order, the snapshot read).

Figure without the fix: 10,000 messages of 2 KB, purged once the reader took 2,000: read_stream ended quietly with
2,309 messages read, read_in_order with 2,593 (attack39c: 2,566).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.in_order import read_in_order
from gamead_core.queue.scan import ScanIncomplete, read_stream

N, PURGE_AT = 10_000, 2_000  #: messages in the stream; messages taken by the reader before the purge


async def _in_order(js: JetStreamContext) -> AsyncIterator[object]:
    info = await js.stream_info("PURGED")
    async with aclosing(read_in_order(js, "PURGED", "purged.>", info, timeout=1)) as msgs:
        async for msg in msgs:
            yield msg


READERS: dict[str, Callable[[JetStreamContext], AsyncIterator[object]]] = {
    "read_stream": lambda js: read_stream(js, "PURGED", "purged.>", timeout=1),
    "read_in_order": _in_order,
}


async def _read_across_a_purge(url: str, reader: str) -> int:
    nc, other = await nats.connect(url), await nats.connect(url)
    try:
        js = nc.jetstream(timeout=10)
        await js.add_stream(StreamConfig(name="PURGED", subjects=["purged.>"]))
        for i in range(N):
            await js.publish(f"purged.{i}", b"x" * 2_000)
        read = 0
        async with aclosing(READERS[reader](js)) as msgs:
            async for _ in msgs:
                read += 1
                if read == PURGE_AT:
                    await other.jetstream(timeout=10).purge_stream("PURGED")
        return read
    finally:
        await nc.close()
        await other.close()


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_read_across_a_purge_is_incomplete(fresh_nats, reader) -> None:  # type: ignore[no-untyped-def]
    """A read of 10,000 messages whose stream is purged after it took 2,000: ScanIncomplete, never a quiet end."""
    server: EmbeddedNats = fresh_nats()
    with pytest.raises(ScanIncomplete) as failed:
        read = asyncio.run(_read_across_a_purge(server.url, reader))
        pytest.fail(f"the read ended quietly with {read} of {N:,} messages, the stream purged after {PURGE_AT:,}")
    assert failed.value.code == "scan_incomplete" and PURGE_AT <= failed.value.details["read"] < N
