"""Batched direct gets end at their deadline with what arrived and say they are incomplete: the registry's listing
(``gamead workers``, ``/v1/workers``) and the doctor's listing of the work stream. Real nats-server; the server
that stops answering is either a responder of the test's own that sends part of a batch and never its end, or
the test's own nats-server stopped by PID (SIGSTOP) half-way through a listing."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI

from gamead_core import names
from gamead_core.api.routes_v1 import router
from gamead_core.config import GameadSettings
from gamead_core.doctor.model import ReadStats
from gamead_core.doctor.read import ReadBudget, list_messages
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.topology import ensure_topology
from gamead_core.registry import NodeInfo, Registry
from gamead_core.registry.direct import last_values
from gamead_core.stats import QueueSampler
from tests.support import all_threads_stopped, wait_for

STALLED = "GAMEAD_STALLED"  #: a stream name whose direct gets the test's responder answers, never to the end
DEADLINE = 1.0  #: seconds, ``nats.request_timeout`` here


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    s = EmbeddedNats(tmp_path / "nats").start()
    yield s
    s.stop()


def _entry(node_id: str) -> bytes:
    now = time.time()
    return NodeInfo.model_validate({
        "id": node_id, "role": "worker", "host": "h", "pid": 4242, "version": "0", "concurrency": 2,
        "startedAt": now - 100, "heartbeatAt": now, "lastProgressAt": now}).model_dump_json().encode()


async def _stall_after(nc: Any, values: list[bytes]) -> None:
    """Answer every batched direct get of :data:`STALLED` with ``values`` and then nothing: no end of batch (a
    replica that stopped half-way)."""
    async def answer(msg: Any) -> None:
        for i, value in enumerate(values, 1):
            await nc.publish(msg.reply, value, headers={"Nats-Sequence": str(i), "Nats-Subject": f"$KV.x.k{i}"})

    await nc.subscribe(f"$JS.API.DIRECT.GET.{STALLED}", cb=answer)
    await nc.flush()


def test_a_registry_listing_cut_short_returns_what_arrived_and_says_it_is_incomplete(server: EmbeddedNats) -> None:
    """Two entries arrive, then the server says nothing more: the listing ends at its deadline with both, marked
    incomplete. Before, it raised and what had arrived was lost."""
    async def scenario() -> Any:
        nc = await nats.connect(server.url)
        try:
            await _stall_after(nc, [_entry("w1"), _entry("w2")])
            async with asyncio.timeout(30):
                return await last_values(nc, STALLED, "$KV.x.", batch=100, timeout=DEADLINE)
        finally:
            await nc.close()

    got = asyncio.run(scenario())
    assert [NodeInfo.model_validate_json(v).id for v in got.values] == ["w1", "w2"]
    assert got.complete is False


class StalledRegistry(Registry):
    """The real registry bucket, listed through a stream name only the test's stalled responder answers."""

    @property
    def stream(self) -> str:
        return STALLED


def test_the_node_view_says_the_registry_listing_is_incomplete_and_how_many_nodes_arrived(
    server: EmbeddedNats,
) -> None:
    """``/v1/workers`` (what ``gamead workers`` prints) over a registry whose listing stops after one entry:
    the answer comes, and its error says the listing is incomplete and that 1 node arrived within the deadline
    (``nats.request_timeout``), instead of a bare "did not finish in time"."""
    settings = GameadSettings.model_validate({"nats": {"request_timeout": DEADLINE}})

    async def scenario() -> dict[str, Any]:
        nc = await nats.connect(server.url)
        try:
            await _stall_after(nc, [_entry("w1")])
            registry = StalledRegistry(nc, nc.jetstream(), settings.registry, timeout=DEADLINE)
            link = SimpleNamespace(nc=nc, js=nc.jetstream(), last_error=None)
            sampler = QueueSampler(link, settings, node_id="api", registry=registry)
            app = FastAPI()
            app.include_router(router)
            app.state.stats_sampler = sampler
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
                async with asyncio.timeout(30):
                    resp = await client.get("/v1/workers")
            assert resp.status_code == 200, resp.text
            return resp.json()  # type: ignore[no-any-return]
        finally:
            await nc.close()

    workers = asyncio.run(scenario())
    assert workers["readAt"] is None, workers  # a partial listing is never taken for the registry
    assert "registry listing is incomplete: 1 node(s) arrived within 1 s" in (workers["error"] or ""), workers


def test_the_doctor_listing_of_a_frozen_server_ends_with_what_arrived_and_says_it_is_partial(
    server: EmbeddedNats,
) -> None:
    """The doctor lists the work stream 1,000 messages a batch; the server is stopped (SIGSTOP) as the first
    batch's last message arrives, so the second batch is never answered. The listing returns at the batch's
    deadline with the 1,000 it read, and the budget says it is partial (the report then says "no problem
    found in what was read (partial)", not "every invariant holds")."""
    settings = GameadSettings.model_validate({"nats": {"request_timeout": DEADLINE}})
    seen: list[int] = []

    def on_msg(subject: str, headers: dict[str, str] | None, seq: int, at: float) -> None:
        seen.append(seq)
        if len(seen) == 1000:  # the first batch's last message: nothing more will be answered
            os.kill(server.proc.pid, signal.SIGSTOP)
            wait_for(lambda: all_threads_stopped(server.proc.pid), timeout=10, interval=0.005, what="nats to stop")

    async def scenario() -> tuple[int, ReadBudget]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_topology(js, settings)
            for i in range(1500):
                await nc.publish(names.level_subject(3), b"{}", headers={names.HDR_AD_ID: f"ad-{i}"})
            await nc.flush()
            async with asyncio.timeout(60):
                while (await js.stream_info(names.ADS_STREAM)).state.messages < 1500:
                    await asyncio.sleep(0.05)
            budget = ReadBudget.of(60.0, 100_000)
            try:
                async with asyncio.timeout(30):
                    last = await list_messages(nc, js, names.ADS_STREAM, names.work_wildcard(0), on_msg=on_msg,
                                               budget=budget, stats=ReadStats(), what="work stream",
                                               timeout=DEADLINE)
            finally:
                os.kill(server.proc.pid, signal.SIGCONT)
            return last, budget
        finally:
            await nc.close()

    last, budget = asyncio.run(scenario())
    assert len(seen) == 1000 and last == 1000
    assert any("did not arrive within 1 s" in why for why in budget.partial), budget.partial
