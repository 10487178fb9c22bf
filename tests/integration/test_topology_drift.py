"""One node's queue settings never rewrite the fleet's topology (attack31c F3, F6): a start raises the work
streams' limits and the consumers' ack_wait, never lowers them without ``queue.lower_limits`` (and then never
below what a stream holds); a node whose settings differ says so (WARNING, ``/readyz``); and a worker paces its
in-progress acks by the consumers' live ack_wait. Real nats-server, real API nodes and workers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import nats

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.topology import ensure_topology
from tests.support import Proc, ad, doctor_report, start_api, start_worker, wait_for, wait_terminal


def _live(url: str) -> tuple[int, list[float]]:
    """The work stream's ``max_msgs`` and the five level consumers' ``ack_wait``, as the server has them."""

    async def main() -> tuple[int, list[float]]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            stream = (await js.stream_info(names.ADS_STREAM)).config.max_msgs
            waits = [float((await js.consumer_info(names.ADS_STREAM, names.level_consumer(lv))).config.ack_wait or 0)
                     for lv in names.LEVELS]
            return int(stream or 0), waits
        finally:
            await nc.close()

    return asyncio.run(main())


def _submit(client: httpx.Client, title: str, priority: int = 3) -> str:
    resp = client.post("/ads", json=ad(title, priority))
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def _topology_check(url: str) -> str:
    return str(httpx.get(f"{url}/readyz", timeout=10).json()["checks"]["topology"])


def test_a_node_with_a_smaller_max_msgs_leaves_the_fleets_limit_and_says_so(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """F6: a `gamead serve` with queue.max_msgs 3 started beside a fleet of 1,000 holding 5 ads cut the stream to
    3: every submit on every node got 503 queue_full, /readyz said ok. Now the live 1,000 stays, the small node
    says so at start (WARNING) and in /readyz; its lowering with queue.lower_limits stops at what the stream
    holds; one to 100 (above the 7 held) is made, and the fleet's node then names the difference (/readyz, its log,
    gamead doctor's topology_limits note)."""
    server = fresh_nats()
    fleet, fleet_url = start_api(server.url, tmp_path, GAMEAD_QUEUE__MAX_MSGS="1000",
                                 GAMEAD_API__TOPOLOGY_CHECK_INTERVAL="0.5")
    procs.append(fleet)
    with httpx.Client(base_url=fleet_url, timeout=10) as client:
        for i in range(5):
            _submit(client, f"Waiting {i}")
        small, small_url = start_api(server.url, tmp_path, GAMEAD_QUEUE__MAX_MSGS="3")
        procs.append(small)
        assert _live(server.url)[0] == 1000
        said = "queue.max_msgs: live 1,000 on stream GAMEAD_ADS, this node's 3: kept the live value"
        wait_for(lambda: said in small.output(), what="the small node's WARNING")
        assert "queue.lower_limits: true" in small.output()  # what to do, in the same line
        assert _topology_check(small_url) == ("degraded: this node's queue settings differ from the live topology "
                                              "(the live values rule): queue.max_msgs: live 1,000 on stream "
                                              "GAMEAD_ADS, this node's 3")
        _submit(client, "Still taken")  # before: 503 queue_full on every node
        with httpx.Client(base_url=small_url, timeout=10) as other:
            _submit(other, "Taken by the small node too")
        small.stop()

        # the explicit word, but below the 7 ads held: refused, the live value kept, and why
        below, _ = start_api(server.url, tmp_path, GAMEAD_QUEUE__MAX_MSGS="3", GAMEAD_QUEUE__LOWER_LIMITS="true")
        procs.append(below)
        wait_for(lambda: "the stream holds 7 messages" in below.output(), what="the refused lowering's WARNING")
        assert _live(server.url)[0] == 1000
        below.stop()

        # the explicit word above what it holds: made; the fleet's node names the difference
        lowered, _ = start_api(server.url, tmp_path, GAMEAD_QUEUE__MAX_MSGS="100", GAMEAD_QUEUE__LOWER_LIMITS="true")
        procs.append(lowered)
        assert _live(server.url)[0] == 100
        differs = "queue.max_msgs: live 100 on stream GAMEAD_ADS, this node's 1,000"
        wait_for(lambda: differs in _topology_check(fleet_url), what="the fleet's node to name the lowered limit")
        assert differs in fleet.output()  # its WARNING
        notes: list[dict[str, object]] = doctor_report(fleet_url)["notes"]  # type: ignore[assignment]
        assert differs in json.dumps([n for n in notes if n["kind"] == "topology_limits"])


def test_a_worker_with_a_shorter_ack_wait_does_not_get_a_healthy_workers_long_analysis_run_twice(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """F3: a worker started with queue.ack_wait 2 cut every level consumer to 2 s while a healthy worker, renewing
    by its own 9 s every 3 s, analysed a 10 s ad: JetStream gave the ad to the newcomer, analysed twice, attempts
    2. Now the consumers keep 9 s, the newcomer says so, and the ad completes once on the worker that took it."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_QUEUE__ACK_WAIT="9")
    procs.append(api)
    healthy = start_worker(server.url, tmp_path, worker_id="healthy", ready=True, GAMEAD_QUEUE__ACK_WAIT="9",
                           GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="10000")
    procs.append(healthy)
    with httpx.Client(base_url=url, timeout=10) as client:
        ad_id = _submit(client, "Long analysis")
        wait_for(lambda: client.get(f"/ads/{ad_id}").json().get("workerId") == "healthy", what="the long ad started")
        newcomer = start_worker(server.url, tmp_path, worker_id="newcomer", ready=True, GAMEAD_QUEUE__ACK_WAIT="2")
        procs.append(newcomer)
        record = wait_terminal(client, ad_id, timeout=40)
    assert (record["status"], record["attempts"], record["workerId"]) == ("completed", 1, "healthy")
    assert _live(server.url)[1] == [9.0] * 5
    assert "queue.ack_wait: live 9 s on consumers gamead-p1, gamead-p2, gamead-p3, gamead-p4, gamead-p5, this " \
           "node's 2 s: kept the live value" in newcomer.output()
    assert "never ended" not in newcomer.output()  # no false "worker died" judgement of the healthy worker


def test_a_worker_paces_its_in_progress_acks_by_the_consumers_live_ack_wait(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """Point 1 of the fix: the consumers lowered to 2 s (queue.lower_limits) under running workers of 9 s. Before,
    the worker renewed its 10 s analysis every 3 s by its own setting, past the live 2 s: JetStream gave the ad to
    the idle worker. Now it reads the live ack_wait, renews every 0.67 s, says so, and the ad completes once."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_QUEUE__ACK_WAIT="9")
    procs.append(api)
    busy = start_worker(server.url, tmp_path, worker_id="busy", ready=True, GAMEAD_QUEUE__ACK_WAIT="9",
                        GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="10000")
    procs.append(busy)
    idle = start_worker(server.url, tmp_path, worker_id="idle", ready=True, GAMEAD_QUEUE__ACK_WAIT="9",
                        GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="10000")
    procs.append(idle)

    async def lower() -> None:
        nc = await nats.connect(server.url)
        try:
            await ensure_topology(nc.jetstream(), GameadSettings(queue={"ack_wait": 2, "lower_limits": True}))
        finally:
            await nc.close()

    asyncio.run(lower())
    assert _live(server.url)[1] == [2.0] * 5
    with httpx.Client(base_url=url, timeout=10) as client:
        # either worker may take it; the other is idle and would get a redelivery
        ad_id = _submit(client, "Long analysis")
        record = wait_terminal(client, ad_id, timeout=40)
    said = "the level consumers' live ack_wait is 2 s, below this worker's queue.ack_wait 9 s"
    assert (record["status"], record["attempts"]) == ("completed", 1), record
    assert said in (busy if record["workerId"] == "busy" else idle).output()
