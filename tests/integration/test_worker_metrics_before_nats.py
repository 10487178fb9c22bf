"""attack39b F7: a worker's ``/metrics``, the liveness probe manifests/base/worker.yaml gives it, is served from its
start, while it waits for NATS, and still once NATS comes; a worker whose event loop is stopped does not answer it.

Figure: before, ``gamead worker`` bound ``/metrics`` only once it had reached NATS; with NATS away (it waits for
ever: ``nats.give_up_after`` 0) every GET was refused, so a liveness probe on it would restart every worker of a
NATS outage at start, and the manifests' startup probe had to allow it an hour."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from gamead_core.embedded import EmbeddedNats, free_port
from tests.support import start_worker, wait_for, wait_worker_ready


def _scrape(url: str, timeout: float = 3.0) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=timeout)
    except httpx.TransportError:
        return None


def test_a_worker_answers_its_liveness_probe_while_nats_is_away(tmp_path: Path) -> None:
    nats_port, metrics_port = free_port(), free_port()
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    worker = start_worker(f"nats://127.0.0.1:{nats_port}", tmp_path, GAMEAD_WORKER__METRICS_PORT=str(metrics_port),
                          GAMEAD_WORKER__METRICS_HOST="127.0.0.1")
    server = None
    try:
        first = wait_for(lambda: _scrape(url), timeout=30, what="/metrics while NATS is away")
        assert first.status_code == 200 and "gamead_" in first.text
        assert worker.alive() and '"worker started"' not in worker.output()  # still waiting for NATS

        worker.signal(signal.SIGSTOP)  # a stopped loop: what the probe is there to see
        try:
            assert _scrape(url, timeout=2.0) is None
        finally:
            worker.signal(signal.SIGCONT)

        server = EmbeddedNats(tmp_path / "nats", port=nats_port).start()  # NATS comes
        wait_worker_ready(worker, timeout=60)
        again = _scrape(url)
        assert again is not None and again.status_code == 200
        assert worker.stop() == 0
        assert _scrape(url, timeout=2.0) is None  # closed with the worker
    finally:
        worker.stop()
        if server is not None:
            server.stop()
