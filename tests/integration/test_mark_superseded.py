"""stall38 item 3: a first delivery runs unmarked (the fast path: its record says ``processing`` only after
``worker.processing_mark_after``); its message redelivered meanwhile (``queue.ack_wait`` passed with its in-progress
acks held up: the worker stalled) went to another worker, which claimed the ad (``processing`` under the later
delivery, one attempt charged) and ran it. The first worker's mark then lost its compare-and-set, and its analysis
ran on to its end beside the other's: two analyses, one outcome (figure: 1 of 1, the first worker's outcome "final or
a later delivery runs it"). Now that mark reads the record once and stops the analysis (cancelled), writing nothing.
Real nats-server, API and worker processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.support import (
    Proc,
    ad,
    frozen,
    start_api,
    start_worker,
    wait_for,
    wait_terminal,
)

SLOW = {"GAMEAD_QUEUE__ACK_WAIT": "2", "GAMEAD_WORKER__PROCESSING_MARK_AFTER": "10",
        "GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS": "15000"}
TWICE = "but it is final or a later delivery runs it now"  #: the line of an outcome analysed for nothing


def test_an_unmarked_analysis_whose_message_went_to_another_worker_stops_at_its_mark(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """Worker 'a' starts an ad of 15 s (marked after 10 s); 'b' joins; 'a' is stopped (SIGSTOP, well within
    ``registry.ttl``) until the message, redelivered after ``ack_wait`` 2 s, runs on 'b' (``processing`` under
    delivery 2). Resumed, 'a' stops its analysis at its mark: no outcome of it (before: 1 of 1, run to its end), its
    line says why, and the ad completes once, by 'b', one attempt charged."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **SLOW)
    procs.append(api)
    a = start_worker(server.url, tmp_path, worker_id="a", ready=True, **SLOW)
    procs.append(a)
    with httpx.Client(base_url=url, timeout=30) as http:
        ad_id = http.post("/ads", json=ad("Redelivered unmarked", 3)).json()["id"]
        wait_for(lambda: any(w["id"] == "a" and w["inFlight"] == 1 for w in http.get("/v1/workers").json()["items"]),
                 timeout=20, what="worker a to run the ad")
        b = start_worker(server.url, tmp_path, worker_id="b", ready=True, **SLOW)
        procs.append(b)
        with frozen(a.pid):
            wait_for(lambda: (r := http.get(f"/ads/{ad_id}").json()).get("workerId") == "b"
                     and r["status"] == "processing", timeout=20, what="b to run the redelivered ad")
        final = wait_terminal(http, ad_id, timeout=60)
        wait_for(lambda: TWICE in a.output() or "is stopped (its outcome could not be written)" in a.output(),
                 timeout=30, what="a's analysis to end or stop")
    logs = a.output()
    twice = logs.count(TWICE)
    print(f"ads a analysed to their end beside b: {twice} of 1; final {final['status']} {final.get('workerId')} "
          f"{final['delivery']} attempts {final['attempts']}")
    assert twice == 0, logs[-3000:]
    assert final["status"] == "completed" and final["workerId"] == "b" and final["attempts"] == 1, final
