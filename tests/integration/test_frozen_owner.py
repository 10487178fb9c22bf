"""attack31c F4: a worker frozen (SIGSTOP) past its registry entry's expiry lost its ad to another worker; resumed,
its stale completion overwrote the record of the worker now running the ad (``processing`` under a later delivery),
which went on analysing for nothing, and the reaper said the frozen worker "died". Now a superseded attempt that
ends late writes nothing over the running owner's record (the owner's outcome stands), and the reaper says the
silent worker "stopped answering". Real nats-server, API and worker processes."""

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

FAST = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5", "GAMEAD_REGISTRY__TTL": "3", "GAMEAD_QUEUE__ACK_WAIT": "15",
        "GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS": "6000", "GAMEAD_WORKER__PROCESSING_MARK_AFTER": "0"}


def test_a_frozen_worker_that_resumes_does_not_overwrite_the_worker_running_its_ad_now(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    """Workers 'a' and 'b' (1 slot each); the one that starts the ad's 6 s analysis ('frozen') is stopped
    (SIGSTOP) until its entry expires, the reaper (the other, 'owner') hands the ad over, and 'owner' runs it
    (``processing`` under a later delivery). Resumed, 'frozen' finishes at once but writes nothing over 'owner''s
    record: the ad completes by 'owner' under its delivery (before: ``completed`` by 'frozen' under the old one, while
    'owner' went on for nothing), and no line says the frozen worker "died": it "stopped answering"."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **FAST)
    procs.append(api)
    workers = {w: start_worker(server.url, tmp_path, worker_id=w, ready=True, **FAST) for w in ("a", "b")}
    procs.extend(workers.values())
    with httpx.Client(base_url=url, timeout=30) as http:
        ad_id = http.post("/ads", json=ad("Long B", 3)).json()["id"]
        first = wait_for(lambda: http.get(f"/ads/{ad_id}").json().get("workerId"), timeout=20,
                         what="a worker to run the ad")
        frozen_worker, owner_id = workers[first], "b" if first == "a" else "a"
        with frozen(frozen_worker.pid):
            running = wait_for(lambda: (r := http.get(f"/ads/{ad_id}").json()).get("workerId") == owner_id
                               and r["status"] == "processing" and r, timeout=60, what="the other to run the ad")
        final = wait_terminal(http, ad_id, timeout=60)
    print(f"while the owner ran it: {running['status']} {running['delivery']}; final {final['status']} "
          f"{final.get('workerId')} {final.get('delivery')} attempts {final['attempts']}")
    logs = workers["a"].output() + workers["b"].output()
    assert final["status"] == "completed" and final["workerId"] == owner_id, final
    assert final["delivery"] == running["delivery"]
    assert f"worker {first} stopped answering" in logs or f"analysis worker {first} was running when it stopped" in logs
    assert f"{first} was running when it died" not in logs and f"worker {first} died" not in logs
