"""A lease keeper through a NATS stall on a real nats-server (stopped by SIGSTOP, by PID, then resumed): it says
the leases bucket is unreachable once, then at most once a minute, then that it works again — not one WARNING line
per try. Session 17's stall drill of `gamead up` (3.5 min) printed "autoscaler lease: cannot reach the leases
bucket" 70 times on the operator's console."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import nats
import pytest

from gamead_core.embedded import EmbeddedNats
from gamead_core.scaling.lease import LeaseKeeper
from tests.support import frozen


def test_a_bucket_unreachable_for_70_s_is_said_in_three_lines_not_one_per_try(
    fresh_nats: Callable[[], EmbeddedNats], caplog: pytest.LogCaptureFixture
) -> None:
    server = fresh_nats()
    assert server.proc is not None
    clock = [1000.0]

    async def run() -> None:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream(timeout=0.3)
            kv = await js.create_key_value(bucket="gamead_leases_outage", history=1)
            keeper = LeaseKeeper(kv, "me", 15.0, monotonic=lambda: clock[0])
            await keeper.step()
            assert keeper.is_leader
            with frozen(server.proc.pid):
                for _ in range(8):  # a try every 10 s (the clock's), each timing out
                    clock[0] += 10.0
                    await keeper.step()
            clock[0] += 10.0
            for _ in range(50):  # the server is back: the next step that gets its answer works
                await keeper.step()
                if keeper.seen is not None and keeper.is_leader:
                    break
                await asyncio.sleep(0.1)
        finally:
            await nc.close()

    with caplog.at_level(logging.INFO, logger="gamead_core.scaling.lease"):
        asyncio.run(run())
    lines = [r.getMessage() for r in caplog.records if "leases bucket" in r.getMessage()]
    assert len(lines) == 3, lines
    assert " lease: cannot reach the leases bucket: " in lines[0]  # the first, in full (with its error)
    assert "still failing for 60 s (7 tries)" in lines[1]
    assert "works again after 80 s (8 failed tries)" in lines[2]
