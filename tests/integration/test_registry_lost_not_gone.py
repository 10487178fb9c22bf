"""attack43b F2 on a real API and worker: a nats-server restart empties the registry's bucket (memory storage), and
every node whose entry vanished with it was listed ``gone`` — "its entry expired" — seconds after its last beat.

A live stack's nats-server SIGKILLed and started again: ``/v1/workers`` listed the API itself and all 3 workers
``gone`` for ~2-3 s with heartbeats 2-4 s old (registry.ttl 10 s), and ``gamead top``'s header said ``0 api · 0
workers … 4 gone``. An entry cannot expire before its TTL: one that vanished younger is listed as it was, aging (late,
stuck as its heartbeat ages), until it beats again or its TTL has passed (then gone, as an expiry). Measured: without
the fix 1 of 1 run failed (``gone`` seen for the API and the worker), with it 1 of 1 passed.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, start_api, start_worker, wait_for


def test_a_nats_restart_lists_no_live_node_gone(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc],
                                                tmp_path: Path) -> None:
    """The worker is held still (SIGSTOP) across the restart, so the API's own beat makes the new bucket and the API
    reads it while the worker's entry is missing (in the drill, 3 of 4 nodes were read so): the worker, 2-5 s since
    its last beat (registry.ttl 10 s), is listed as it was, never ``gone``; it is live again once continued."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path)
    procs.append(api)
    worker = start_worker(server.url, tmp_path, worker_id="w1")
    procs.append(worker)
    http = httpx.Client(base_url=url, timeout=5)

    def nodes() -> dict[str, dict]:
        try:
            return {n["id"]: n for n in http.get("/v1/workers").json().get("items", [])}
        except (httpx.HTTPError, ValueError):
            return {}

    wait_for(lambda: (n := nodes()).get("w1", {}).get("state") in ("ok", "idle") and len(n) == 2, timeout=30,
             what="the API and worker w1 listed live")
    api_id = next(k for k in nodes() if k != "w1")
    seen: list[dict[str, str]] = []

    def read(until: Callable[[dict[str, dict]], bool]) -> bool:
        got = nodes()
        seen.append({k: n["state"] for k, n in got.items()})
        return bool(got) and until(got)

    worker.signal(signal.SIGSTOP)
    try:
        api_beat = nodes()[api_id]["heartbeatAt"]
        server.kill()
        server.start()  # the same port and store: the registry's memory-stored bucket is empty now
        # the API beat into the new bucket, and its sampler read it twice since (1 s apart) without w1's entry
        wait_for(lambda: read(lambda n: n.get(api_id, {}).get("heartbeatAt") not in (None, api_beat)),
                 timeout=30, interval=0.1, what="the API's first beat after the restart")
        first = nodes()[api_id]["heartbeatAt"]
        wait_for(lambda: read(lambda n: n.get(api_id, {}).get("heartbeatAt") != first), timeout=30, interval=0.1,
                 what="the API's next beat (a second registry read without w1)")
    finally:
        worker.signal(signal.SIGCONT)
    wait_for(lambda: read(lambda n: n.get("w1", {}).get("state") in ("ok", "idle")), timeout=30, interval=0.1,
             what="w1 live again")
    gone = [s for s in seen if "gone" in s.values()]
    assert not gone, f"a live node listed gone after a NATS restart: {gone[0]} ({len(gone)} of {len(seen)} reads)"
    http.close()
