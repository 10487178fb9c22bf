"""stall38 item 1: a worker whose registry entry expired (frozen by SIGSTOP past ``registry.ttl``) had its ads
recovered by the reaper and run by another worker; resumed, it still finished the analyses it was running and went
to write their outcomes (``analysed under delivery …, but it is final or a later delivery runs it now``): every ad
it held ran twice (figure: 3 of 3 ads, in both cases below). Now a worker knows its lease (the entry) lapsed — no
put of its heartbeat landed within ``registry.ttl`` less half a heartbeat interval of the last one sent — and then
stops the analyses it runs (cancelled) and writes, acknowledges and hands back nothing of what it held: the
recovery did that. Real nats-server, API and worker processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import pytest

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

LATENCY = 6.0  #: seconds each analysis takes
FAST = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5", "GAMEAD_REGISTRY__TTL": "3", "GAMEAD_QUEUE__ACK_WAIT": "15",
        "GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS": str(int(LATENCY * 1000)), "GAMEAD_WORKER__PROCESSING_MARK_AFTER": "0"}
ADS = 3
TWICE = "but it is final or a later delivery runs it now"  #: the line of an outcome analysed for nothing


@pytest.mark.parametrize("past_its_end", [False, True], ids=["resumed-mid-analysis", "resumed-past-its-end"])
def test_a_worker_whose_lease_lapsed_stops_what_it_ran_and_writes_nothing(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path, past_its_end: bool) -> None:
    """Worker 'a' (3 slots) runs 3 ads of 6 s; 'b' joins; 'a' is stopped (SIGSTOP) until its entry expired, the
    reaper handed the 3 over (to run alone, one at a time) and 'b' runs the first, and — ``past_its_end`` — until
    'a''s analyses would have ended. Resumed, 'a' finishes and writes none of the deliveries it held (it stops each
    running one once its record says it was recovered): no outcome of them, written or not (before: 3 of 3 in both
    cases, 2 written over the recovery and 1 "final or a later delivery runs it"), its line says its lease lapsed,
    and all 3 complete under later deliveries ('b''s, or 'a''s own taken after it resumed: the recovered ads are
    queued for any worker)."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **FAST)
    procs.append(api)
    a = start_worker(server.url, tmp_path, worker_id="a", concurrency=ADS, ready=True, **FAST)
    procs.append(a)
    with httpx.Client(base_url=url, timeout=30) as http:
        ids = [http.post("/ads", json=ad(f"Twice {i}", 3)).json()["id"] for i in range(ADS)]

        def records() -> list[dict[str, object]]:
            return [http.get(f"/ads/{i}").json() for i in ids]

        def run_by(worker: str) -> list[dict[str, object]] | None:
            rs = records()
            return rs if all(r.get("workerId") == worker and r["status"] == "processing" for r in rs) else None

        def handed_over(rs: list[dict[str, object]]) -> bool:  # recovered (suspect: b runs them one at a time)
            return (not any(r.get("workerId") == "a" and r["status"] == "processing" for r in rs)
                    and any(r.get("workerId") == "b" and r["status"] == "processing" for r in rs))

        started = wait_for(lambda: run_by("a"), timeout=30, what="worker a to run the 3 ads")
        b = start_worker(server.url, tmp_path, worker_id="b", concurrency=ADS, ready=True, **FAST)
        procs.append(b)
        with frozen(a.pid):
            wait_for(lambda: handed_over(records()), timeout=60, what="the 3 ads handed over, one running on b")
            if past_its_end:  # the premise: a's analyses would be over by now (not an assertion on time)
                end = max(datetime.fromisoformat(str(r["startedAt"]).replace("Z", "+00:00")).timestamp()
                          for r in started) + LATENCY + 0.5
                wait_for(lambda: time.time() >= end, timeout=LATENCY + 5, what="a's analyses to be due")
        finals = [wait_terminal(http, i, timeout=60) for i in ids]
    logs = a.output()
    stale = sum(f["delivery"] == s["delivery"] for f, s in zip(finals, started))  # a's outcome under its old one
    twice = logs.count(TWICE) + stale  # a's outcomes of the deliveries it held when frozen, written or not
    stopped = logs.count("is stopped, nothing written")  # cancelled once its record said it was recovered
    unwritten = logs.count("a recovery took the ad back: nothing written")  # ended while frozen: not written
    print(f"ads a analysed to their end after its lease lapsed: {twice} of {ADS}; stopped {stopped}, ended while "
          f"frozen and not written {unwritten}; finals "
          f"{[(f['status'], f.get('workerId'), f['delivery'], f['attempts']) for f in finals]}")
    assert twice == 0, logs[-3000:]
    assert stopped + unwritten == ADS and (past_its_end or stopped == ADS), logs[-3000:]
    assert "lease lapsed" in logs, logs[-3000:]
    assert all(f["status"] == "completed" for f in finals), finals
