"""attack27b F1: with JetStream's memory store full (the registry bucket is a memory stream) no node can write
its heartbeat and every worker fences itself, so the queue waits; ``gamead up`` sent the operator to ``gamead
doctor``, which said "every invariant holds" (exit 0), and ``/readyz`` said nothing of it. Now the doctor's
registry write probe reports ``registry_unwritable`` (exit 1, naming the refusal and the memory store) and
``/readyz``'s ``registry`` check says the API's own heartbeat writes are refused (degraded, still ready: its ads
live on file storage).

Writes fail for real: ``gamead up`` runs on a nats-server of the test with an 8 MB ``max_memory_store``, filled
past its limit by a stream of the test (as in ``test_up_heartbeat_refused``); deleting that stream ends it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.integration.test_up_heartbeat_refused import (
    FAST,
    MAX_MEMORY,
    _empty_memory,
    _fill_memory,
)
from tests.support import clean_env, run_gamead, up_stack, wait_for


@pytest.mark.timeout(300)
def test_doctor_and_readyz_say_the_registry_refuses_writes_while_the_memory_store_is_full(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats", max_memory="8MB").start()
    (tmp_path / "config.yaml").write_text("registry: {ttl: 3, heartbeat_interval: 0.5}\n")
    up = up_stack(tmp_path, "--workers", "1", "--no-autoscale", GAMEAD_NATS__URL=server.url, **FAST).start()
    try:
        up.wait_ready()
        with httpx.Client(base_url=up.url, timeout=10) as client:
            wait_for(lambda: client.get("/readyz").json()["checks"].get("registry") == "ok", timeout=30,
                     what="/readyz to say the registry is written")
            clean = run_gamead("doctor", "--api", up.url, "--settle", "0", env=clean_env(), timeout=120)
            assert clean.returncode == 0, (clean.stdout[-2000:], clean.stderr[-2000:])

            assert asyncio.run(_fill_memory(server.url)) > MAX_MEMORY

            def refused() -> dict[str, object] | None:
                ready = client.get("/readyz")
                registry = ready.json()["checks"].get("registry", "")
                return ready.json() | {"code": ready.status_code} if registry.startswith("degraded") else None

            ready = wait_for(refused, timeout=30, what="/readyz to say the registry refuses this node's writes")
            registry = ready["checks"]["registry"]  # type: ignore[index]
            assert registry.startswith("degraded: writes refused for ") and "insufficient resources" in registry
            assert ready["code"] == 200 and ready["status"] == "degraded", ready  # ads are still served

            run = run_gamead("doctor", "--api", up.url, "--settle", "0", env=clean_env(), timeout=120)
            assert run.returncode == 1, (run.returncode, run.stdout[-3000:], run.stderr[-2000:])
            assert "every invariant holds" not in run.stdout
            assert "registry_unwritable" in run.stdout and "insufficient resources" in run.stdout, run.stdout
            assert "JetStream memory store full" in run.stdout and "takes no work" in run.stdout, run.stdout
            as_json = run_gamead("doctor", "--api", up.url, "--settle", "0", "-o", "json", env=clean_env(),
                                 timeout=120)
            report = json.loads(as_json.stdout)
            (finding,) = [f for f in report["findings"] if f["kind"] == "registry_unwritable"]
            assert finding["sample"] == ["registry bucket"] and report["ok"] is False

            asyncio.run(_empty_memory(server.url))
            wait_for(lambda: client.get("/readyz").json()["checks"].get("registry") == "ok", timeout=30,
                     what="/readyz to say the registry is written again")
            after = run_gamead("doctor", "--api", up.url, "--settle", "0", env=clean_env(), timeout=120)
            assert after.returncode == 0, (after.stdout[-2000:], after.stderr[-2000:])
    finally:
        up.kill_everything()
        server.stop()
