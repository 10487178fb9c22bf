"""A read of a whole stream never passes part of it off as all of it (fix35e; ``gamead_core.queue.scan``).

On a real nats-server:

- **keys rewritten during the read** of a KV bucket (one revision per key): each rewrite removes the revision
  the read has not reached yet and stores the new one past the end measured at the start. Figure: 4,000 keys of
  1 KiB, the last 40 rewritten once the read has begun → 39 keys never read before (3,961 of 4,000; fix35b saw
  ``GET /v1/jobs`` list 2 of 3 running jobs). Now every key, at its last value (the callers:
  ``test_scan_rewrites``).
- **a stall is an error**: nats-server stopped (SIGSTOP) mid-read for longer than the read's timeout. Before, the
  read ended there without a word (1,892 of 4,000 messages read; a DLQ replay selected part of the DLQ and said
  ``succeeded``); now :class:`ScanIncomplete` (503 ``scan_incomplete``) or, NATS not answering at all,
  ``QueueUnavailable``.
- what must stay an end (a guard of the stall check, which asks NATS whether unread messages remain): messages
  deleted ahead of the read, and nothing stored after a start time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import nats
import pytest
from nats.js.api import KeyValueConfig, StreamConfig

from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import QueueUnavailable
from gamead_core.queue.scan import ScanIncomplete, read_stream
from tests.support import all_threads_stopped, wait_for

N, K = 4_000, 40  #: keys in the bucket; keys rewritten once the read has begun
VALUE = b"v" * 1024


async def _bucket(js: nats.js.JetStreamContext) -> None:
    kv = await js.create_key_value(KeyValueConfig(bucket="SCAN", history=1))
    for i in range(N):
        await kv.put(f"k{i:05d}", VALUE + b"old")


async def _read_rewriting(js: nats.js.JetStreamContext, *, follow: bool) -> dict[str, bytes]:
    """Read bucket SCAN's stream; after the first message, rewrite its last :data:`K` keys (well past what
    nats-server pushed yet: flow control holds a push consumer far short of 4 MiB). Last value per key."""
    kv = await js.key_value("SCAN")
    seen: dict[str, bytes] = {}
    async for msg in read_stream(js, "KV_SCAN", "$KV.SCAN.>", timeout=3.0, follow=follow):
        if not seen:
            for i in range(N - K, N):
                await kv.put(f"k{i:05d}", VALUE + b"new")
        seen[msg.subject.removeprefix("$KV.SCAN.")] = msg.data[len(VALUE):]
    return seen


def test_keys_rewritten_during_a_read_are_read(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    server = fresh_nats()

    async def run() -> dict[str, bytes]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await _bucket(js)
            return await _read_rewriting(js, follow=True)
        finally:
            await nc.close()

    seen = asyncio.run(run())
    assert len(seen) == N, f"{N - len(seen)} of {N} keys never read (figure before the fix: 39 missing)"
    assert sum(value == b"new" for value in seen.values()) == K  # the rewritten ones at their last value


def test_a_stall_mid_read_is_an_error(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """nats-server stopped after the read's first message, resumed 1 s after the read's timeout (1 s) ran out:
    the read raises (before: it ended there, quietly, with part of the stream)."""
    server = fresh_nats()
    assert server.proc is not None
    pid = server.proc.pid

    async def run() -> int:
        nc = await nats.connect(server.url)
        read, resume = 0, threading.Timer(2.0, os.kill, (pid, signal.SIGCONT))
        try:
            js = nc.jetstream()
            await js.add_stream(StreamConfig(name="DLQ", subjects=["dlq.*"]))
            for i in range(N):
                await js.publish(f"dlq.{i}", VALUE)
            async for _ in read_stream(js, "DLQ", "dlq.*", timeout=1.0):
                read += 1
                if read == 1:
                    os.kill(pid, signal.SIGSTOP)
                    wait_for(lambda: all_threads_stopped(pid), timeout=10, interval=0.005, what="nats-server stop")
                    resume.start()
            return read
        finally:
            resume.cancel()
            os.kill(pid, signal.SIGCONT)
            await nc.close()

    with pytest.raises(QueueUnavailable) as failed:  # ScanIncomplete, or the probe itself unanswered
        read = asyncio.run(run())
        pytest.fail(f"the read ended quietly after {read} of {N} messages")
    if isinstance(failed.value, ScanIncomplete):
        assert failed.value.code == "scan_incomplete" and failed.value.details["read"] < N


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
