"""left39b item 2: a worker whose lease lapsed (frozen by SIGSTOP past it) and which then runs again puts its running
analyses in doubt and reads their records until they end; but once a heartbeat of its landed again it read them only
every half heartbeat interval, so a recovery landing after its first look let the analysis run on up to that long
beside its new worker: here to its very end (figure, before: the analysis ran its last 1.5 s out, "a recovery took
the ad back: nothing written", 1 of 1). Now it looks every 50 ms for ``registry.ttl`` after the lapse: the analysis
is stopped ("is stopped, nothing written").

Real nats-server, API and worker processes; the recovery is the reaper's own (:func:`gamead_core.worker.reaper.
recover`, as a reaper calls it once the worker's entry is judged expired), run by the test after the worker's first
look, at a moment of its choosing: no live reaper could be made to land there."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import nats

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.registry import NodeInfo
from gamead_core.registry.nodes import node_key
from gamead_core.store.ads import AdStore
from gamead_core.worker.reaper import recover
from tests.support import Proc, ad, frozen, start_api, start_worker, wait_for, wait_terminal

INTERVAL, TTL = 4.0, 9.0  #: registry.heartbeat_interval and registry.ttl: the lease lapses 7 s after a put's send
LATENCY = 11.0  #: seconds each analysis takes
LEFT = 1.5  #: seconds of the analysis left when the worker runs again (less than half a heartbeat interval)
ENV = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": str(INTERVAL), "GAMEAD_REGISTRY__TTL": str(TTL),
       "GAMEAD_QUEUE__ACK_WAIT": "60", "GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS": str(int(LATENCY * 1000)),
       "GAMEAD_WORKER__PROCESSING_MARK_AFTER": "0"}


def _node(url: str, worker_id: str) -> NodeInfo:
    async def read() -> NodeInfo:
        nc = await nats.connect(url)
        try:
            entry = await (await nc.jetstream().key_value(names.REGISTRY_BUCKET)).get(node_key(worker_id))
            return NodeInfo.model_validate_json(entry.value or b"")
        finally:
            await nc.close()
    return asyncio.run(read())


def _recover(url: str, node: NodeInfo) -> None:
    async def run() -> None:
        nc = await nats.connect(url)
        try:
            await recover(nc, await AdStore.open(nc, nc.jetstream()), node, GameadSettings(), silent=True)
        finally:
            await nc.close()
    asyncio.run(run())


def test_an_analysis_recovered_after_the_first_look_is_stopped_at_once(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """Worker 'a' runs one ad of 11 s; it is frozen past its lease (7 s) until 1.5 s of the analysis are left, then
    runs again (its first look finds nothing recovered); then the reaper's recovery of what it held lands. The
    analysis is stopped (before: it ran its 1.5 s out, its next look due 2 s after the first), nothing of it is
    written, and the ad completes under a later delivery."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    a = start_worker(server.url, tmp_path, worker_id="a", ready=True, **ENV)
    procs.append(a)
    with httpx.Client(base_url=url, timeout=30) as http:
        ad_id = http.post("/ads", json=ad("Looked at", 3)).json()["id"]
        running = wait_for(lambda: (r := http.get(f"/ads/{ad_id}").json())["status"] == "processing" and r,
                           timeout=30, what="a to run the ad")
        node = wait_for(lambda: (n := _node(server.url, "a")).holding and n, timeout=30, what="a to announce it")
        ends = datetime.fromisoformat(str(running["startedAt"]).replace("Z", "+00:00")).timestamp() + LATENCY
        with frozen(a.pid):  # past its lease (the premise, not an assertion on time)
            wait_for(lambda: time.time() >= ends - LEFT, timeout=LATENCY + 5, what="the analysis's last seconds")
        wait_for(lambda: "lease lapsed" in a.output(), timeout=30, what="a to see its lease lapsed")
        _recover(server.url, node)
        final = wait_terminal(http, ad_id, timeout=90)
    logs = a.output()
    stopped = logs.count("is stopped, nothing written")
    ran_out = logs.count("a recovery took the ad back: nothing written")
    print(f"stopped {stopped}, ran to its end {ran_out}; final {final['status']} under {final['delivery']}")
    assert (stopped, ran_out) == (1, 0), logs[-3000:]
    assert final["status"] == "completed" and final["delivery"] != running["delivery"], final
