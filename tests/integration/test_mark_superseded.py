"""stall38 item 3: a first delivery runs unmarked (the fast path: its record says ``processing`` only after
``worker.processing_mark_after``); its message redelivered meanwhile (``queue.ack_wait`` passed with its in-progress
acks held up: the worker stalled) went to another worker, which claimed the ad (``processing`` under the later
delivery, one attempt charged) and ran it. The first worker's mark then lost its compare-and-set, and its analysis
ran on to its end beside the other's: two analyses, one outcome (figure: 1 of 1, the first worker's outcome "final or
a later delivery runs it"). Now that mark reads the record once and stops the analysis (cancelled), writing nothing.
Real nats-server, API and worker processes.

The premise (mark39): 'a' is stopped before its mark, and the stop outlasts neither ``registry.ttl`` nor the lease.
Before, 'b' was started (a process start) inside a's 10 s before its mark, and a loaded machine could let 'a' pass
its mark first (then 'a' owns the record and the test fails for nothing the product does). Now 'b' runs from the
start, its pull requests lost on the way (``PublishFilter.drop``), so only 'a' can take the ad: between a's first
delivery and its stop lies only the wait for a's heartbeat to show it (at most 1.1 s of the 10 s in 16 loaded runs);
b's pulls go through once 'a' is stopped, and the test checks that a's mark was not written then (a late stop fails
naming it). ``registry.ttl`` 60 s (the stop lasts at most its 20 s wait): a stop lapsing a's lease (ttl less half a
heartbeat) or dropping 'a' from the registry would stop its analysis by another path (stall38 item 1), passing the
test without the mark's check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.nats_filter import PublishFilter
from tests.support import (
    Proc,
    ad,
    frozen,
    start_api,
    start_worker,
    wait_for,
    wait_terminal,
)

#: ack_wait 6 s: at 2 s, b's in-progress acks (every ack_wait / 3) came late at load 13-22 and the ad went back to
#: 'a' (completed by 'a', attempts 2: 3 of 3 runs on 5599f7d1 at load 13-16, a fresh clone's run); 0 of 3 at 6 s
SLOW = {"GAMEAD_QUEUE__ACK_WAIT": "6", "GAMEAD_WORKER__PROCESSING_MARK_AFTER": "10",
        "GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS": "15000", "GAMEAD_REGISTRY__TTL": "60"}
PULLS = "$JS.API.CONSUMER.MSG.NEXT."  #: the subjects of a worker's pull requests (JetStream ADR-13)
TWICE = "but it is final or a later delivery runs it now"  #: the line of an outcome analysed for nothing


def test_an_unmarked_analysis_whose_message_went_to_another_worker_stops_at_its_mark(
        fresh_nats: Callable[[], EmbeddedNats], links: list[PublishFilter], procs: list[Proc],
        tmp_path: Path) -> None:
    """Worker 'a' starts an ad of 15 s (marked after 10 s), 'b' idle beside it (its pulls lost until then); 'a' is
    stopped (SIGSTOP; ``registry.ttl`` 60 s) before its mark until the message, redelivered after ``ack_wait`` 6 s,
    runs on 'b' (``processing`` under delivery 2). Resumed, 'a' stops its analysis at its mark: no outcome of it
    (before: 1 of 1, run to its end), its line says why, and the ad completes once, by 'b', one attempt charged."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **SLOW)
    procs.append(api)
    proxy = PublishFilter(("127.0.0.1", server.port)).start()
    links.append(proxy)
    proxy.drop(PULLS)  # b is up, but nothing reaches it until a is stopped
    b = start_worker(proxy.url, tmp_path, worker_id="b", ready=True, GAMEAD_QUEUE__IDLE_WAIT="0.5", **SLOW)
    procs.append(b)  # idle_wait 0.5 s: its long polls are sent again soon after they go through
    a = start_worker(server.url, tmp_path, worker_id="a", ready=True, **SLOW)
    procs.append(a)
    with httpx.Client(base_url=url, timeout=30) as http:
        ad_id = http.post("/ads", json=ad("Redelivered unmarked", 3)).json()["id"]
        wait_for(lambda: any(w["id"] == "a" and w["inFlight"] == 1 for w in http.get("/v1/workers").json()["items"]),
                 timeout=20, what="worker a to run the ad")
        with frozen(a.pid):
            proxy.pass_all()
            before = http.get(f"/ads/{ad_id}").json()
            assert before["status"] == "queued" and not before.get("workerId"), f"a marked it before its stop: {before}"
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
