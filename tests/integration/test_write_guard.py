"""The NATS write guard (gamead_core.queue.liveness.guard_writes) against nats-py's own writes, on real servers
(review17)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats
import pytest

from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.liveness import guard_writes, reader_alive


def test_a_flow_control_reply_nats_py_sends_from_its_read_loop_is_never_refused(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture
) -> None:
    """An ordered consumer (gamead_core.queue.scan: record listings, the doctor, the audit log) is a push consumer
    with flow control: the server waits for a reply to each flow-control message before it delivers more, and
    nats-py publishes that reply from inside its read loop (``Client._process_msg``). A refusal there is raised
    through the protocol parser and ends the read loop (``except Exception: break``): every answer on the
    connection stops until the reader guard drops the socket, with everything still unsent. The room left under
    ``nats.max_pending_bytes`` after a stall's submits and the node's own periodic writes can be smaller than a
    flow-control reply (~100 bytes); a bound below that size gives that room without racing a stall."""
    server = fresh_nats()
    count, size = 600, 8 * 1024  # ~4.8 MB: several flow-control windows

    async def run() -> int:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream(timeout=5.0)
            await js.add_stream(name="FC", subjects=["fc.>"])
            payload = b"p" * size
            for i in range(count):
                await js.publish("fc.x", payload)
            sub = await js.subscribe("fc.x", stream="FC", ordered_consumer=True)
            guard_writes(nc, 64)  # no room for any write of nats-py's but a tiny one
            got, refused = 0, []
            while got < count:
                try:
                    await sub.next_msg(timeout=5.0)
                except (nats.errors.TimeoutError, asyncio.TimeoutError):
                    break
                except nats.errors.Error as exc:  # raised by next_msg's own flow-control reply
                    refused.append(exc)
                    continue
                got += 1
            assert reader_alive(nc), f"nats-py's read loop died after {got} of {count} messages"
            assert not refused, f"next_msg raised {refused[0]!r} ({len(refused)} times)"
            return got
        finally:
            await nc.close()

    assert asyncio.run(run()) == 600
