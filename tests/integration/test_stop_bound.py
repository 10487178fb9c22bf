"""One SIGTERM ends a role within its bound, whatever its NATS does (rule 4, leak34): a child of a killed test run
or a killed ``gamead up`` gets its parent-death SIGTERM and nothing after it, so a shutdown await that waits on a
stalled NATS must not keep it alive. Figure: with ``nats.request_timeout`` 10 s and its nats-server stopped
(SIGSTOP), a worker's stop (``worker.drain_timeout`` 1 s, 2 ads mid-analysis) ran its final writes one
``request_timeout`` after another — lease release, hand-back refunds, heartbeat removal, the connection's drain —
and exited 0 19 s after its SIGTERM, past its bound of 1 + 12 s (with the default 25 s drain: 43 s, past the
manifests' terminationGracePeriodSeconds 40). Now it is cut at its bound: exit 1, one line on stderr naming the
bound and what was still running. (The bound's margin is 18 s since session 39, the sum of the later steps'
deadlines at the default request timeout; the test's 20 s request timeout keeps the steps past it.)"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx

from gamead_core.embedded import EmbeddedNats
from gamead_core.stop_bound import CUT_EXIT, worker_bound
from tests.support import ad, frozen, start_api, start_worker, wait_for

#: every JetStream call waits 20 s for a stalled server (its steps' deadlines then add up past the bound, 1 + 18 s);
#: 2 ads hang in their analysis until the drain cuts them
SLOW = {"GAMEAD_NATS__REQUEST_TIMEOUT": "20", "GAMEAD_WORKER__DRAIN_TIMEOUT": "1",
        "GAMEAD_WORKER__FAULTS__RATE": "1", "GAMEAD_WORKER__FAULTS__MATCH": "^hang",
        "GAMEAD_WORKER__FAULTS__MODE": "hang", "GAMEAD_WORKER__TASK_TIMEOUT": "120",
        "GAMEAD_RATELIMIT__ENABLED": "false", "GAMEAD_AUTOSCALER__BACKEND": "none"}


def test_one_sigterm_ends_a_worker_within_its_bound_while_its_nats_is_stalled(
    fresh_nats: Callable[[], EmbeddedNats], procs: list, tmp_path: Path
) -> None:
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_RATELIMIT__ENABLED="false", GAMEAD_AUTOSCALER__BACKEND="none")
    worker = start_worker(server.url, tmp_path, worker_id="wbound", concurrency=2, ready=True, **SLOW)
    procs += [api, worker]
    with httpx.Client(base_url=url, timeout=10) as http:
        ids = [http.post("/ads", json=ad(f"hang {i}", priority=2)).json()["id"] for i in range(2)]
        wait_for(lambda: all(http.get(f"/ads/{i}").json()["status"] == "processing" for i in ids), timeout=30,
                 what="2 ads mid-analysis")
    assert server.proc is not None
    with frozen(server.proc.pid):
        worker.signal(signal.SIGTERM)  # one signal: what a parent's death sends
        code = worker.popen.wait(timeout=120) if worker.popen is not None else None
    out = worker.output()
    bound = worker_bound(1.0)
    assert code == CUT_EXIT, f"exit {code}, not cut at its bound:\n{out[-3000:]}"
    line = next(li for li in out.splitlines() if "its stop did not end within its bound" in li)
    assert f"gamead worker: its stop did not end within its bound of {bound:g} s" in line, line
    assert "still running: " in line or "did not answer" in line, line  # what was cut

