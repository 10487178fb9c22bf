"""How the node views count late and gone nodes, on a real NATS (drill attack26 F4, F7): ``/v1/stats`` ``nodes``
never counts a node twice in fields a script adds, its worker counts equal ``/metrics``' ``gamead_workers``, a gone
API node shows no metrics URL (a restarted API serves its port), and ``top``'s header and ``gamead workers``'
footer count the same nodes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nats
from rich.console import Console

from gamead_cli.commands.workers import _view
from gamead_cli.tui.view_header import summary_text
from gamead_core.embedded import EmbeddedNats
from gamead_core.registry import NodeInfo
from gamead_core.registry.wire import CREATE_FENCE
from tests.integration.test_node_views import clocked_sampler, scraped_workers, server, worker_entry

__all__ = ["server"]  # the fixture, shared with test_node_views

URL = "http://127.0.0.1:18780/metrics"  # the API port a restarted API reuses


def api_entry(node_id: str, *, age: float = 0.0, now: float | None = None, started: float | None = None) -> NodeInfo:
    """An API node's registry entry announcing :data:`URL`, its last heartbeat ``age`` s before ``now``, of a process
    started at ``started`` (epoch s; default 100 s before ``now``): as worker_entry's."""
    now = time.time() if now is None else now
    return NodeInfo.model_validate({
        "id": node_id, "role": "api", "host": "h", "pid": 4343, "version": "0", "concurrency": 0, "inFlight": 0,
        "startedAt": now - 100 if started is None else started, "heartbeatAt": now - age, "lastProgressAt": now - age,
        "metricsUrl": URL,
        "fence": CREATE_FENCE})  # a node of this gamead (without it: an older one, the doctor's unfenced_node)


def text(renderable: Any) -> str:
    console = Console(width=200, no_color=True, record=True)
    console.print(renderable)
    return console.export_text()


def test_late_and_gone_nodes_are_counted_once_and_the_views_agree(server: EmbeddedNats) -> None:
    async def scenario() -> None:
        nc = await nats.connect(server.url)
        try:
            registry, sampler, clock = clocked_sampler(nc)  # 1.5 s after the late nodes' beats: late
            # (> 2.5 × 0.5 s), not stuck (2 s)
            started = time.time() - 100  # each node's one start time: a new one would be another process (owner)
            await registry.put(worker_entry("frozen-w", age=1.5, now=clock.at))
            await registry.put(worker_entry("busy-w", in_flight=1, now=clock.at, started=started))
            await registry.put(api_entry("api-dead", now=clock.at))
            await registry.put(api_entry("api-late", age=1.5, now=clock.at, started=started))
            await sampler.sample()
            counts = sampler.stats()["nodes"]
            # late nodes are live: in workers/api, and counted apart per role (no sum counts one twice)
            assert (counts["workers"], counts["late"], counts["api"], counts["apiLate"]) == (2, 1, 2, 1), counts
            metric = await scraped_workers(sampler)
            assert metric["late"] == counts["late"] and sum(metric.values()) == counts["workers"], (metric, counts)

            clock.at = None  # the wall clock: api-dead and frozen-w stop beating, their entries expire
            for _ in range(200):
                now = time.time()
                await registry.put(worker_entry("busy-w", in_flight=1, now=now, started=started))
                await registry.put(api_entry("api-new", now=now, started=started))  # the restarted API, same port
                await registry.put(api_entry("api-late", age=1.5, now=now, started=started))
                if not {"api-dead", "frozen-w"} & {n.id for n in await registry.list()}:
                    break
                await sampler.sample()  # remembers them before they expire
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the silent nodes' entries never expired")
            await sampler.sample()
            body = sampler.workers_payload()
            nodes = {n["id"]: n for n in body["items"]}
            assert nodes["api-dead"]["state"] == "gone" and nodes["api-dead"]["metricsUrl"] is None, nodes
            assert nodes["api-new"]["metricsUrl"] == URL, nodes
            stats = sampler.stats()
            counts = stats["nodes"]
            seen = (counts["api"], counts["apiLate"], counts["apiGone"], counts["workers"], counts["gone"])
            assert seen == (2, 1, 1, 1, 1), counts
            metric = await scraped_workers(sampler)
            assert metric["gone"] == counts["gone"] and sum(metric.values()) == counts["workers"] + counts["gone"]

            footer = text(_view(body))
            assert "5 node(s): 2 api, 1 worker(s) — 1 late — 2 gone" in footer, footer
            assert footer.count(URL) == 2, footer  # the live APIs' addresses: not beside the dead one's id
            header = text(summary_text(stats, "http://api"))
            assert "2 api · 1 worker " in header and " 1 late 2 gone" in header, header
        finally:
            await nc.close()

    asyncio.run(scenario())
