"""A read of a whole stream never passes part of it off as all of it (fix35e; ``gamead_core.queue.scan``).

On a real nats-server:

- **keys rewritten during the read** of a KV bucket (one revision per key): each rewrite removes the revision
  the read has not reached yet and stores the new one past the end measured at the start. Figure: 4,000 keys of
  1 KiB, the last 40 rewritten once the read has begun → 39 keys never read before (3,961 of 4,000; fix35b saw
  ``GET /v1/jobs`` list 2 of 3 running jobs). Now every key, at its last value (the callers:
  ``test_scan_rewrites``).
- **a stall is an error**: nats-server's deliveries stalled mid-read for longer than the read's timeout. Before,
  the read ended there without a word (1,892 of 4,000 messages read; a DLQ replay selected part of the DLQ and said
  ``succeeded``); now :class:`ScanIncomplete` (503 ``scan_incomplete``) or, NATS not answering at all,
  ``QueueUnavailable``.

The reader's connection goes through a proxy (``tests.nats_filter``) that holds nats-server's bytes after the
read's first delivery, so the read stands there, however loaded the machine, until the rewrites are stored (their
tail not pushed yet: a push consumer's flow control holds nats-server ~2 MiB short of the 4 MiB) or the read gives
up waiting. Before (flake39), the test acted on the first message the reader took, SIGSTOP or rewrites: a loaded
run had nats-py take in all 4,000 before the reader's first turn (the stall's read "ended quietly after 4000 of
4000", 2 of 2 runs beside two CPU burners).
- what must stay an end (a guard of the stall check, which asks NATS whether unread messages remain): messages
  deleted ahead of the read, and nothing stored after a start time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import nats
from nats.js.api import KeyValueConfig, StreamConfig

from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.scan import read_stream
from tests.nats_filter import PublishFilter, stalled_read_error
from tests.waits import until

N, K = 4_000, 40  #: keys in the bucket; keys rewritten once the read has begun
VALUE = b"v" * 1024


async def _bucket(js: nats.js.JetStreamContext) -> None:
    kv = await js.create_key_value(KeyValueConfig(bucket="SCAN", history=1))
    for i in range(N):
        await kv.put(f"k{i:05d}", VALUE + b"old")


async def _read_rewriting(js: nats.js.JetStreamContext, writer: nats.js.JetStreamContext, proxy: PublishFilter, *,
                          follow: bool) -> dict[str, bytes]:
    """Read bucket SCAN's stream through ``proxy``; once it holds the read after its first message, rewrite the
    last :data:`K` keys on ``writer`` (a connection of its own), then let the read go on. Last value per key."""
    kv = await writer.key_value("SCAN")
    seen: dict[str, bytes] = {}
    proxy.stall_deliveries(after=1, seconds=None, subject="$KV.SCAN.")
    try:
        async for msg in read_stream(js, "KV_SCAN", "$KV.SCAN.>", timeout=3.0, follow=follow):
            if not seen:
                await until(lambda: proxy.holds, timeout=30, interval=0.002, what="the read held at the proxy")
                for i in range(N - K, N):
                    await kv.put(f"k{i:05d}", VALUE + b"new")
                proxy.release()
            seen[msg.subject.removeprefix("$KV.SCAN.")] = msg.data[len(VALUE):]
    finally:
        proxy.release()
    return seen


def test_keys_rewritten_during_a_read_are_read(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()

    async def run() -> dict[str, bytes]:
        nc = await nats.connect(server.url)
        reader = await nats.connect(proxy.url)
        try:
            js = nc.jetstream()
            await _bucket(js)
            return await _read_rewriting(reader.jetstream(), js, proxy, follow=True)
        finally:
            await reader.close()
            await nc.close()

    try:
        seen = asyncio.run(run())
    finally:
        proxy.stop()
    assert len(seen) == N, f"{N - len(seen)} of {N} keys never read (figure before the fix: 39 missing)"
    assert sum(value == b"new" for value in seen.values()) == K  # the rewritten ones at their last value


def test_a_stall_mid_read_is_an_error(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """nats-server's deliveries stalled after the read's first message until the read, its timeout (1 s) run out,
    asks NATS what is left: the read raises (before: it ended there, quietly, with part of the stream)."""
    server = fresh_nats()
    proxy = PublishFilter(("127.0.0.1", server.port)).start()

    async def run() -> int:
        nc = await nats.connect(proxy.url)
        read = 0
        try:
            js = nc.jetstream()
            await js.add_stream(StreamConfig(name="DLQ", subjects=["dlq.*"]))
            for i in range(N):
                await js.publish(f"dlq.{i}", VALUE)
            proxy.stall_deliveries(after=1, seconds=None, subject="dlq.")
            proxy.release_on("$JS.API.STREAM.MSG.GET.DLQ")  # the read's question, once its timeout ran out
            async for _ in read_stream(js, "DLQ", "dlq.*", timeout=1.0):
                read += 1
            return read
        finally:
            await nc.close()

    stalled_read_error(lambda: asyncio.run(run()), proxy, N, "DLQ")


def test_what_is_an_end_stays_one(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """Messages deleted ahead of the read (a DLQ replay removing entries) end it without an error, and a read
    from a time after the last message reads nothing, without an error."""
    server = fresh_nats()

    async def run() -> tuple[int, int]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await js.add_stream(StreamConfig(name="DLQ", subjects=["dlq.*"]))
            for i in range(20):
                await js.publish(f"dlq.{i}", b"x")
            for seq in range(11, 21):
                await js.delete_msg("DLQ", seq)
            read = [msg async for msg in read_stream(js, "DLQ", "dlq.*", timeout=1.0)]
            later = datetime.now(UTC) + timedelta(seconds=60)
            none = [msg async for msg in read_stream(js, "DLQ", "dlq.*", timeout=1.0, start_time=later)]
            return len(read), len(none)
        finally:
            await nc.close()

    assert asyncio.run(run()) == (10, 0)
