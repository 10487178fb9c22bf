"""The API node's record-scan gate (gamead_core.api.scan_gate), without servers.

A reviewer's 40 filtered ``GET /ads`` at once took one API from 87 to 433 MB RSS: now ``api.list_scans`` run,
as many wait, and the rest answer 503 ``list_busy`` at once with ``Retry-After``."""

from __future__ import annotations

import asyncio

import pytest

from gamead_core.api.errors import ListBusy
from gamead_core.api.scan_gate import ScanGate


def test_two_run_two_wait_and_the_fifth_is_refused_at_once() -> None:
    async def run() -> tuple[int, list[str]]:
        gate, release, inside, order = ScanGate(2), asyncio.Event(), 0, []

        async def scan(name: str) -> None:
            nonlocal inside
            async with gate.slot():
                inside += 1
                order.append(name)
                await release.wait()
                inside -= 1

        tasks = [asyncio.create_task(scan(f"s{i}")) for i in range(4)]
        await asyncio.sleep(0.01)
        most = inside
        with pytest.raises(ListBusy) as refused:
            async with gate.slot():
                pass
        assert refused.value.status == 503 and refused.value.code == "list_busy"
        assert refused.value.headers["Retry-After"]
        release.set()
        await asyncio.gather(*tasks)
        async with gate.slot():  # free again once they are done
            order.append("after")
        return most, order

    most, order = asyncio.run(run())
    assert most == 2
    assert order == ["s0", "s1", "s2", "s3", "after"]
