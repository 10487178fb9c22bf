"""A poison ad does not put a ``gamead up`` fleet in the restart back-off (chaos48 F4). Real nats-server, a real
API, real worker processes supervised and recovered as ``gamead up`` does (gamead's Supervisor and LocalScaler,
``attach_recovery``), stopped by PID."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import nats
import pytest

from gamead_core.embedded import EmbeddedNats
from gamead_core.supervisor import Supervisor
from tests.forked_popen import fork_supervised
from tests.support import Proc, ad, clean_env, gamead_argv, start_api

FAST_REGISTRY = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5", "GAMEAD_REGISTRY__TTL": "3"}
MAX_ATTEMPTS = 5
#: what an ad a crashing worker had fetched but not announced yet waits for: nobody knows of it to hand it back, so
#: JetStream redelivers it after queue.ack_wait (README "An ad's budget is its analysis attempts"; no attempt charged)
ACK_WAIT = 20.0
#: the product's bound for every ad to end: each crash (at most worker.max_attempts + 1 of them, README "A crashing
#: ad") may strand what its worker had fetched unannounced, back after ack_wait; and 90 s for the work on a loaded
#: machine. Before (load59A) 180 s with ack_wait 300: a worker that died holding a delivery it had not announced left
#: that ad queued past the deadline ("any delivery it had not announced yet … comes back when … ack_wait expires")
SETTLE_BOUND = (MAX_ATTEMPTS + 1) * ACK_WAIT + 90
SHORT_ACK_WAIT = {"GAMEAD_QUEUE__ACK_WAIT": f"{ACK_WAIT:g}"}
DEATH = re.compile(r"^(worker-\d+) \(pid (\d+)\) died with exit code 70(?: \(.*\))?; "
                   r"restarting (?:in ([\d.]+)s|at once)$")
SOONER = re.compile(r"^(worker-\d+) \(pid (\d+)\) restarts as after a first death instead")


def restart_delays(lines: list[str]) -> list[float]:
    """The delay each crash of the console ``lines`` was restarted after (pure): its death line's, or the base
    0.5 s where a line says its recovery brought it there."""
    sooner = {m.group(2) for line in lines if (m := SOONER.match(line))}
    return [0.0 if m.group(2) in sooner else float(m.group(3) or 0) for line in lines if (m := DEATH.match(line))]


def test_restart_delays_reads_the_console() -> None:
    lines = ["worker-1 (pid 7) died with exit code 70 (the injected crash fault); restarting at once",
             "worker-2 (pid 8) died with exit code 70 (the injected crash fault); restarting in 4.0s",
             "worker-2 (pid 8) restarts as after a first death instead (its crash was …); restarting at once",
             "worker-1 (pid 9) died with exit code 70; restarting in 2.0s"]
    assert restart_delays(lines) == [0.0, 0.0, 2.0]


@pytest.mark.timeout(360)  # SETTLE_BOUND (210 s), the API's start, 41 submits and the stop, on a loaded machine
def test_a_poison_ad_dies_of_its_crashes_while_the_workers_restart_at_the_base_delay(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """chaos48 F4: the two workers of a ``gamead up`` took turns on a poison ad (``worker.faults`` crash), each
    crash a death in a row: ``restarting in 8.0s`` … ``30.0s`` within 40 s, and 4 poison ads in 9,000 left 1,886
    queued 4 min after the last submit. Now a crash charged to the one ad it ran alone (or after ads completed)
    does not lengthen the back-off: 1 poison ad among 40, 2 workers × 4 slots, max_attempts 5; the poison ad dead
    with 5 attempts (``WorkerLost``), every other completed at its first, and no crash restarted later than 1 s
    after it (one crash in a mix with nothing completed yet may count: 0.5 s then 1 s). Before: 6 crashes over 2
    workers, so one of them waited 2 s and more (16 s at a 6th in a row)."""
    from gamead_core.config import load_settings
    from gamead_core.scaling.local import LocalScaler
    from gamead_core.worker.reaper import recover_exited

    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **SHORT_ACK_WAIT, **FAST_REGISTRY)
    procs.append(api)
    env = clean_env(
        GAMEAD_NATS__URL=server.url, GAMEAD_WORKER__CONCURRENCY="4", GAMEAD_WORKER__MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        GAMEAD_WORKER__BACKOFF_BASE="0.2", GAMEAD_WORKER__FAULTS__RATE="1",
        GAMEAD_WORKER__FAULTS__MATCH="^Poison", GAMEAD_WORKER__FAULTS__MODE="crash",
        GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="200", **FAST_REGISTRY, **SHORT_ACK_WAIT,
    )
    fork_supervised(monkeypatch)  # the workers and their restarts forked, not fresh interpreters
    for name, value in env.items():  # the recovery judges with the workers' settings, as gamead up's does
        if name.startswith("GAMEAD_"):
            monkeypatch.setenv(name, value)
    settings = load_settings()
    console: list[str] = []

    async def run() -> tuple[dict, list[dict]]:
        nc = await nats.connect(server.url)
        scaler = LocalScaler(Supervisor(on_event=console.append), argv=lambda wid: gamead_argv("worker", "--id", wid),
                             env=env, log_dir=tmp_path, drain_timeout=5)
        scaler.attach_recovery(partial(recover_exited, nc, nc.jetstream(), settings))
        scaler.set_replicas(2)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=20) as http:
                async def submit(title: str) -> str:
                    resp = await http.post("/ads", json=ad(title, 2))
                    assert resp.status_code == 202, resp.text
                    return str(resp.json()["id"])

                poison = await submit("Poison Pill")
                normal = [await submit(f"Innocent {i}") for i in range(40)]
                deadline = asyncio.get_running_loop().time() + SETTLE_BOUND
                while True:
                    scaler.poll()  # what gamead up's loop does: restart the dead, recover what they held
                    try:
                        records = {i: (await http.get(f"/ads/{i}")).json() for i in [poison, *normal]}
                    except httpx.TransportError:  # a kept-alive connection the API closed as we sent: look again
                        await asyncio.sleep(0.1)
                        continue
                    if all(r["status"] in ("completed", "dead") for r in records.values()):
                        return records[poison], [records[i] for i in normal]
                    assert asyncio.get_running_loop().time() < deadline, (records[poison], console)
                    await asyncio.sleep(0.1)
        finally:
            await scaler.close()
            await nc.close()

    dead, others = asyncio.run(run())
    delays = restart_delays(console)
    print(f"{len(delays)} crashes restarted after {delays}")
    assert [(r["status"], r["attempts"]) for r in others] == [("completed", 1)] * 40
    assert (dead["status"], dead["attempts"], dead["error"]["errorClass"]) == ("dead", MAX_ATTEMPTS, "WorkerLost")
    assert len(delays) >= 5, console
    assert max(delays) <= 1.0, console
