"""An API that stood still does not blame the nodes that did not (newcomer33 F4), on a real NATS, a real
``gamead serve`` and a real ``gamead worker``: the API is stopped (SIGSTOP) for 6 s while the worker beats on."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gamead_core.embedded import EmbeddedNats
from tests.support import frozen, start_api, start_worker, wait_for

STALL = 6.0  #: seconds the API stands still: more than 2.5 heartbeats of 2 s (late), less than registry.ttl


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    s = EmbeddedNats(tmp_path / "nats").start()
    yield s
    s.stop()


def _worker_state(url: str) -> str | None:
    items = httpx.get(f"{url}/v1/workers", timeout=5).json()["items"]
    return next((n["state"] for n in items if n["id"] == "beating-w"), None)


def test_an_api_that_stood_still_does_not_show_the_nodes_that_beat_meanwhile_late(server: EmbeddedNats,
                                                                                    tmp_path: Path) -> None:
    """F4: right after the API's own 6 s stall (SIGSTOP/SIGCONT of ``gamead serve``), ``gamead workers`` showed
    every node ``late`` for one read: the answer aged the API's pre-stall registry read by the stall, though the
    worker beat every 2 s meanwhile. The three answers that judge nodes, asked during the stall and answered at
    its end, now show the worker as it is: ``/v1/workers`` not late, ``/v1/stats`` ``nodes.late`` 0, ``/metrics``
    ``gamead_workers{state="late"}`` 0; and the queue's oldest age is not the stall's either (nothing waits).
    The same kind in ``/healthz``: with ``api.nats_unhealthy_after`` 2 s, the stall read as NATS silent for 6 s,
    503 ``nats_unreachable`` (a liveness probe restarts the node for its own pause); now it is 200."""
    api, url = start_api(server.url, tmp_path, GAMEAD_API__NATS_UNHEALTHY_AFTER="2")
    worker = start_worker(server.url, tmp_path, worker_id="beating-w", ready=True)
    try:
        wait_for(lambda: _worker_state(url) in ("ok", "idle"), timeout=30, what="the worker listed, beating")
        host, port = urlsplit(url).hostname, urlsplit(url).port
        asked: dict[str, http.client.HTTPConnection] = {}
        with frozen(api.pid):
            stopped = time.monotonic()
            for path in ("/v1/workers", "/v1/stats?history=0", "/metrics", "/healthz"):  # sent now, answered later
                asked[path] = http.client.HTTPConnection(host, port, timeout=30)
                asked[path].request("GET", path)
            wait_for(lambda: time.monotonic() - stopped >= STALL, timeout=STALL + 5, interval=0.1,
                     what=f"a {STALL:g} s stall")
        answers = {}
        for path, conn in asked.items():
            resp = conn.getresponse()
            answers[path] = resp.read().decode()
            assert resp.status == 200, (path, resp.status, answers[path])
            conn.close()
        workers = {n["id"]: n for n in json.loads(answers["/v1/workers"])["items"]}
        assert workers["beating-w"]["state"] in ("ok", "idle"), workers["beating-w"]
        stats = json.loads(answers["/v1/stats?history=0"])
        assert stats["nodes"]["late"] == 0 and stats["nodes"]["stuck"] == 0, stats["nodes"]
        assert all(lv["oldestAgeSeconds"] is None for lv in stats["queue"]["levels"]), stats["queue"]["levels"]
        metric = {s.labels["state"]: s.value for f in text_string_to_metric_families(answers["/metrics"])
                  if f.name == "gamead_workers" for s in f.samples}
        assert metric["late"] == 0 and metric["stuck"] == 0, metric
    finally:
        worker.stop()
        api.stop()
