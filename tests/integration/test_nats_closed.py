"""review26 F1 (last paragraph): nats-py 2.16 closes a client for good, with no reconnect and no ``error_cb``, on
server ``-ERR``s other than a refusal: here ``Maximum Payload Violation``, from a nats-server reloaded (SIGHUP)
with a ``max_payload`` smaller than what the client publishes (nats-py keeps the limit of its first INFO). Before,
``gamead worker`` ran for ever on the closed client (pulls failed, logged once) and the API said "has not answered"
only after 60 s. Now the worker exits 3 with one line naming the server's error, and the API's ``/readyz`` and
``/healthz`` (503) say ``NATS closed the connection: maximum payload violation`` at once, then it stops serving
(exit 3). A plain nats-server started, reloaded and stopped by its PID."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from gamead_core.api.app import create_app
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.closed import NatsClosed
from tests.support import ad, start_worker, until_ready, wait_for
from tests.waits import until

CLOSED = "NATS closed the connection: maximum payload violation"


def _shrink_max_payload(server: EmbeddedNats) -> None:
    """Reload ``server`` (SIGHUP, no restart: the connections stay) with ``max_payload: 64`` bytes."""
    conf = server.data_dir / "nats.conf"
    conf.write_text(conf.read_text(encoding="utf-8") + "max_payload: 64\n", encoding="utf-8")
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGHUP)
    wait_for(lambda: "Reloaded server configuration" in server.log_path.read_text(errors="replace"), timeout=10,
             what="nats-server to reload its config")


@pytest.mark.timeout(120)
def test_a_worker_whose_client_nats_closed_exits_3_naming_the_servers_error(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats").start()
    worker = None
    try:
        worker = start_worker(server.url, tmp_path / "logs", ready=True, GAMEAD_REGISTRY__HEARTBEAT_INTERVAL="1",
                              GAMEAD_WORKER__DRAIN_TIMEOUT="2")
        _shrink_max_payload(server)  # its next heartbeat (> 64 bytes) makes the server close it
        wait_for(lambda: not worker.alive(), timeout=60, what="the worker to exit")
        assert worker.popen is not None and worker.popen.returncode == 3, worker.output()[-3000:]
        last = worker.output().strip().splitlines()[-1]
        assert CLOSED in last and "queue.ack_wait" in last, last  # the held ads come back after ack_wait
        assert "Traceback" not in worker.output()
    finally:
        if worker is not None:
            worker.stop()
        server.stop()


@pytest.mark.timeout(120)
def test_the_api_says_nats_closed_the_connection_at_once_and_stops_serving(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats").start()

    async def scenario() -> dict[str, Any]:
        app = create_app(GameadSettings(), server.url)
        stopped: list[bool] = []
        app.state.stop_serving = lambda: stopped.append(True)  # what `gamead serve` sets: uvicorn stops
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            await until_ready(client)
            await asyncio.to_thread(_shrink_max_payload, server)
            await client.post("/ads", json=ad("Closed By NATS", 1))  # > 64 bytes: the server closes the client
            await until(lambda: stopped, timeout=30, what="the API to stop serving")
            return {"health": await client.get("/healthz"), "ready": await client.get("/readyz"),
                    "refused": getattr(app.state, "refused", None)}

    try:
        seen = asyncio.run(scenario())
    finally:
        server.stop()
    health, ready = seen["health"], seen["ready"]
    assert health.status_code == 503 and CLOSED in health.json()["error"]["message"], health.text
    assert health.json()["error"]["code"] == "nats_unreachable", health.text
    assert ready.status_code == 503 and CLOSED in str(ready.json()["checks"]["nats"]), ready.text
    assert "no answer" not in ready.text
    assert isinstance(seen["refused"], NatsClosed) and CLOSED in seen["refused"].message  # `gamead serve` exits 3
