"""stall38 item 2: a worker stopped (SIGTERM) while NATS stalled handed its running ad back after a single refund
try that timed out: the record stayed ``processing``, charged, under the handed-back delivery, and the next delivery
counted a lost attempt ("never ended … the attempt stays charged"): ``attempts`` 2 for one analysis. Now the refund
is tried again every 0.5 s while nobody else can have been given the delivery and the stop lasts, so a stall shorter
than that refunds it. Real nats-server (stopped by PID), API and worker processes."""

from __future__ import annotations

import signal
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

ENV = {"GAMEAD_WORKER__PROCESSING_MARK_AFTER": "0", "GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS": "8000",
       "GAMEAD_WORKER__DRAIN_TIMEOUT": "1", "GAMEAD_QUEUE__ACK_WAIT": "15"}


def test_a_shutdown_refund_that_meets_a_stall_is_tried_again(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """Worker 'a' runs an ad of 8 s (marked ``processing``, one attempt); nats-server is stopped (SIGSTOP) and 'a'
    told to stop (SIGTERM, ``drain_timeout`` 1 s): its hand-back's refund times out. nats-server resumes once 'a'
    said so; 'a' exits, 'b' runs the ad: it completes with ``attempts`` 1 (before: 2, a lost attempt charged)."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    a = start_worker(server.url, tmp_path, worker_id="a", ready=True, **ENV)
    procs.append(a)
    with httpx.Client(base_url=url, timeout=30) as http:
        ad_id = http.post("/ads", json=ad("Refund in a stall", 3)).json()["id"]
        wait_for(lambda: (r := http.get(f"/ads/{ad_id}").json()).get("workerId") == "a"
                 and r["status"] == "processing", timeout=20, what="worker a to run the ad")
        with frozen(server.proc.pid):
            a.signal(signal.SIGTERM)
            wait_for(lambda: "could not refund its attempt on hand-back" in a.output(), timeout=40,
                     what="worker a to say its refund failed")
        wait_for(lambda: a.popen is not None and a.popen.poll() is not None, timeout=40, what="worker a to exit")
        b = start_worker(server.url, tmp_path, worker_id="b", ready=True, **ENV)
        procs.append(b)
        final = wait_terminal(http, ad_id, timeout=60)
    print(f"final {final['status']} by {final.get('workerId')} under {final['delivery']}: attempts "
          f"{final['attempts']}; a lost attempt said: {'never ended' in b.output()}")
    assert final["status"] == "completed" and final["attempts"] == 1, final
    assert "never ended" not in b.output(), b.output()[-3000:]
