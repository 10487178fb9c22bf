"""attack29c F9: a full disk met by batch submits (`gamead submit --count`, NDJSON) left the API ready, its storage
state "ok" and its log silent, though 540 ads came back "may be queued": the batch route's unanswered writes were
not told to the storage probe, as a single submit's are. Real nats-server (stopped by SIGSTOP: its writes go
unanswered, as a full disk's do) and a real API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, frozen, start_api, wait_for


def test_a_batch_whose_writes_go_unanswered_marks_storage_failing_and_says_so(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_API__PUBLISH_TIMEOUT="1", GAMEAD_RATELIMIT__ENABLED="false")
    procs.append(api)
    assert server.proc is not None
    with httpx.Client(base_url=url, timeout=30) as client:
        with frozen(server.proc.pid):
            answer = client.post("/ads/batch", json={"ads": [ad(f"Full Disk {i}") for i in range(3)]})
            assert answer.status_code == 200, answer.text
            assert all(r["error"]["code"] == "queue_unavailable" for r in answer.json()["results"]), answer.text
            storage = client.get("/v1/stats").json()["storage"]
        assert storage["lastFailedWrite"] is not None, storage  # before: null, the state "ok"
        wait_for(lambda: "a write to the work stream failed" in api.output(), what="the API's log line")
