"""attack39b F7: a worker's ``/metrics``, the liveness probe manifests/base/worker.yaml gives it, is served from its
start, while it waits for NATS, and still once NATS comes; a worker whose event loop is stopped does not answer it.

Figure: before, ``gamead worker`` bound ``/metrics`` only once it had reached NATS; with NATS away (it waits for
ever: ``nats.give_up_after`` 0) every GET was refused, so a liveness probe on it would restart every worker of a
NATS outage at start, and the manifests' startup probe had to allow it an hour."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.ports import ReservedPort, start_metered_worker
from tests.support import wait_for, wait_worker_ready


def _scrape(url: str, timeout: float = 3.0) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=timeout)
    except httpx.TransportError:
        return None


def test_a_worker_answers_its_liveness_probe_while_nats_is_away(tmp_path: Path) -> None:
    """The NATS port is held by the test (:class:`tests.ports.ReservedPort`: connections refused, as with nothing
    there) until its server starts: picked with ``free_port`` and left free for the worker's wait, another process
    of a parallel run took it (freshG of 9cf5311a: ``ConfigError: port 13702 … is taken``)."""
    with ReservedPort() as nats_port:
        worker, metrics_port = start_metered_worker(f"nats://127.0.0.1:{nats_port.port}", tmp_path)
        url = f"http://127.0.0.1:{metrics_port}/metrics"
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

            server = EmbeddedNats(tmp_path / "nats", port=nats_port.release()).start()  # NATS comes
            wait_worker_ready(worker, timeout=60)
            again = _scrape(url)
            assert again is not None and again.status_code == 200
            assert worker.stop() == 0
            assert _scrape(url, timeout=2.0) is None  # closed with the worker
        finally:
            worker.stop()
            if server is not None:
                server.stop()
