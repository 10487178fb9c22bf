"""review26 F7: ``gamead up`` killed a serving API (and a worker) only because its registry heartbeat, a KV
*write*, failed while reads worked; restarted, it was killed again after start grace + ttl, in a loop, just when
the operator needed ``/v1/stats``, ``/readyz`` and ``gamead doctor``. Now a silent child is asked first (the API
on its ``/healthz``, a worker on its ``/metrics``): one that answers is left running, and the console says once
that it is alive but cannot write its heartbeat, and once when it writes again.

Writes fail for real here: ``gamead up`` runs on a nats-server of the test (``nats.url``) whose JetStream memory
store (``max_memory_store``, where the registry bucket lives) is filled past its limit by a stream of the test;
the server then refuses every write to a memory stream while reads go on. Deleting that stream ends it.
Children are found by PID from ``gamead-up.json``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import nats
import pytest
from nats.js.api import StorageType, StreamConfig

from gamead_core.embedded import EmbeddedNats
from tests.support import ad, pid_alive, up_stack, wait_for

TTL = 3.0
MAX_MEMORY = 8 * 1024 * 1024  #: the test server's ``max_memory_store`` ("8MB")
FAST = {"GAMEAD_WORKER__DRAIN_TIMEOUT": "3", "GAMEAD_QUEUE__ACK_WAIT": "5", "GAMEAD_LOG__LEVEL": "WARNING"}


async def _fill_memory(url: str) -> int:
    """Fill the server's JetStream memory store past its limit by 64 KiB (the registry's entries expiring never
    bring it back under): the registry bucket's puts are refused from now on, its reads still answered. Returns
    the bytes used."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=10)
        await js.add_stream(StreamConfig(name="TEST_FILL", subjects=["test.fill"], storage=StorageType.MEMORY))
        while (used := (await js.account_info()).memory) < MAX_MEMORY:
            step = 256 * 1024
            await js.publish("test.fill", b"z" * (step if used + step < MAX_MEMORY else MAX_MEMORY - used + 65536))
        return int(used)
    finally:
        await nc.close()


async def _empty_memory(url: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream(timeout=10).delete_stream("TEST_FILL")
    finally:
        await nc.close()


@pytest.mark.timeout(300)
def test_an_api_and_a_worker_that_cannot_write_their_heartbeat_are_left_serving_and_named_once(
        tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats", max_memory="8MB").start()
    (tmp_path / "config.yaml").write_text(f"registry: {{ttl: {TTL:g}, heartbeat_interval: 0.5}}\n")
    up = up_stack(tmp_path, "--workers", "1", "--no-autoscale", GAMEAD_NATS__URL=server.url, **FAST).start()
    try:
        up.wait_ready()
        api, worker = up.pid_of("api"), up.pid_of("worker-1")
        with httpx.Client(base_url=up.url, timeout=10) as client:
            def beating() -> bool:
                pids = {n.get("pid") for n in client.get("/v1/workers").json()["items"]}
                return {api, worker} <= pids

            wait_for(beating, timeout=60, what="the API's and worker-1's registry entries")
            assert asyncio.run(_fill_memory(server.url)) > MAX_MEMORY

            alive = {name: f"{name} (pid {pid}) is alive but cannot write its heartbeat"
                     for name, pid in (("api", api), ("worker-1", worker))}
            wait_for(lambda: all(line in up.output() for line in alive.values()), timeout=30,
                     what="gamead up to say the API and worker-1 are alive but cannot write their heartbeat")
            lines = {name: next(ln for ln in up.output().splitlines() if said in ln) for name, said in alive.items()}
            assert f"(registry.ttl {TTL:g}s), yet /healthz answered 200; its heartbeat failed: " in lines["api"]
            assert "yet /metrics answered 200; its heartbeat failed: " in lines["worker-1"], lines["worker-1"]
            assert "Left running: fix what refuses its writes to the registry bucket" in lines["api"]

            # Watch past 2 × ttl more (the API was killed at ttl of silence, restarted, and killed again after
            # the start grace + ttl): the window ends early if either child is replaced
            until = time.monotonic() + 2 * TTL + 1

            def replaced_or_watched() -> bool:
                return (up.running_pid("api") != api or up.running_pid("worker-1") != worker
                        or time.monotonic() > until)

            wait_for(replaced_or_watched, timeout=30, what="the watch window")
            assert (up.running_pid("api"), up.running_pid("worker-1")) == (api, worker), up.output()[-3000:]
            assert pid_alive(api) and pid_alive(worker)
            assert client.get("/healthz").status_code == 200
            stats = client.get("/v1/stats")
            assert stats.status_code == 200, stats.text[:500]
            assert "(SIGKILL)" not in up.output()
            assert all(up.output().count(said) == 1 for said in alive.values())  # said once, not every reading

            asyncio.run(_empty_memory(server.url))
            back = f"api (pid {api}) writes its registry heartbeat again, after "
            wait_for(lambda: back in up.output() and f"worker-1 (pid {worker}) writes its registry heartbeat again"
                     in up.output(), timeout=30, what="gamead up to say both write their heartbeat again")
            assert up.output().count(back) == 1
            wait_for(beating, timeout=30, what="both entries in the registry again")
            assert (up.running_pid("api"), up.running_pid("worker-1")) == (api, worker)
    finally:
        up.kill_everything()
        server.stop()


@pytest.mark.timeout(300)
def test_an_ad_running_on_a_worker_that_cannot_write_its_heartbeat_is_analysed_once_and_never_charged(
        tmp_path: Path) -> None:
    """review27 F1: left running, the worker went on while the reaper (in that very worker) took its expired entry
    for a death: the ad it was analysing was charged an attempt (``WorkerLost``), set back to queued and NAKed,
    so it ran twice. Now the worker takes no work once its heartbeat has not been written for ttl - one beat
    (gamead_core.worker.fence), and a reaper whose own heartbeat fails judges no death: the ad runs once."""
    server = EmbeddedNats(tmp_path / "nats", max_memory="8MB").start()
    (tmp_path / "config.yaml").write_text(f"registry: {{ttl: {TTL:g}, heartbeat_interval: 0.5}}\n")
    up = up_stack(tmp_path, "--workers", "1", "--no-autoscale", GAMEAD_NATS__URL=server.url, **FAST,
                  GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="8000").start()
    try:
        up.wait_ready()
        worker = up.pid_of("worker-1")
        with httpx.Client(base_url=up.url, timeout=10) as client:
            ad_id = client.post("/ads", json=ad("Long Running")).json()["id"]

            def announced() -> bool:  # the worker holds it, and says so in its entry
                items = client.get("/v1/workers").json()["items"]
                return any(n.get("pid") == worker and n.get("holding") for n in items)

            wait_for(announced, timeout=30, what="worker-1 to announce the ad it runs")
            assert asyncio.run(_fill_memory(server.url)) > MAX_MEMORY
            wait_for(lambda: f"worker-1 (pid {worker}) is alive but cannot write its heartbeat" in up.output(),
                     timeout=30, what="gamead up to say worker-1 cannot write its heartbeat")
            record = wait_for(lambda: (r := client.get(f"/ads/{ad_id}").json())["status"] == "completed" and r,
                              timeout=60, what="the ad to complete")
            assert record["attempts"] == 1, record
            assert not record.get("error") and not record.get("suspect"), record
            log = (up.data_dir / "logs" / "worker-1.log").read_text()
            assert "died holding" not in log and "stopped answering" not in log, log[-3000:]  # no recovery of it
            assert "charged an attempt" not in log, log[-3000:]
            assert "heartbeat not written for" in log  # the fence closed, and said so
            assert up.running_pid("worker-1") == worker
    finally:
        up.kill_everything()
        server.stop()
