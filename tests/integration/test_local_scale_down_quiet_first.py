"""``gamead up``'s scale-down stops the quiet worker, not a busy one (upquiet50): the local backend picks the workers
it stops by their registry entries, as a Kubernetes scale-down marks its pods (unhealthy first, then quiet, then the
fewest ads running and held, the newest among equals).

Drill: three local workers, ``gamead workers quiet local-1``, an ad running on each of local-2 and local-3, then
``gamead scale set 2``. Before: local-3 (the newest, busy) was stopped and quiet local-1 (no capacity) stayed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import nats
import pytest

from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.scaling.deps import AutoscalerDeps
from gamead_core.scaling.local import LocalScaler
from gamead_core.scaling.loop import Autoscaler
from gamead_core.scaling.store import Override, ScaleStore
from gamead_core.supervisor import Supervisor
from tests.forked_popen import fork_supervised
from tests.support import Proc, ad, clean_env, gamead_argv, pid_alive, run_gamead, start_api, wait_for
from tests.waits import until


def _listed(http: httpx.Client) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in http.get("/v1/workers", params={"role": "worker"}).json().get("items") or []}


@pytest.mark.timeout(180)
def test_gamead_ups_scale_down_stops_the_quiet_worker_not_the_busy_newest(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fork_supervised(monkeypatch)  # its workers forked, not fresh interpreters (suite46)
    server = fresh_nats()
    front, url = start_api(server.url, tmp_path, GAMEAD_AUTOSCALER__BACKEND="local")  # shows state; never leads
    procs.append(front)
    env = clean_env(GAMEAD_NATS__URL=server.url, GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="60000",
                    GAMEAD_REGISTRY__HEARTBEAT_INTERVAL="0.5", GAMEAD_METRICS__ENABLED="false",
                    GAMEAD_WORKER__DRAIN_TIMEOUT="2")
    scaler = LocalScaler(Supervisor(), argv=lambda wid: gamead_argv("worker", "--id", wid, "--concurrency", "1"),
                         env=env, log_dir=tmp_path / "workers", drain_timeout=2)
    settings = GameadSettings(autoscaler={"backend": "local", "interval": 0.5, "min_replicas": 1, "max_replicas": 3})
    try:
        scaler.set_replicas(3)  # as `gamead up --workers 3`
        with httpx.Client(base_url=url, timeout=20) as http:
            wait_for(lambda: len(_listed(http)) == 3, timeout=60, what="local-1, local-2, local-3 registered")
            told = run_gamead("workers", "quiet", "local-1", env=clean_env(GAMEAD_API_URL=url))
            assert told.returncode == 0, told.stderr
            wait_for(lambda: (_listed(http).get("local-1") or {}).get("quiet"), timeout=20, what="local-1 quiet")
            batch = http.post("/ads/batch", json={"ads": [ad(f"Busy for a minute {i}") for i in range(2)]})
            ids = [r["id"] for r in batch.json()["results"]]
            want = {"local-1": (0, True), "local-2": (1, False), "local-3": (1, False)}
            wait_for(lambda: {i: (n.get("inFlight"), n.get("quiet")) for i, n in _listed(http).items()} == want,
                     timeout=30, what=f"an ad running on each of local-2 and local-3 (inFlight, quiet): {want}")
        pids = scaler.pids()

        async def main() -> Autoscaler:  # the autoscaler as `gamead up` runs it, its backend the LocalScaler
            nc = await nats.connect(server.url)
            js = nc.jetstream()
            stop = asyncio.Event()
            try:
                now = time.time()
                await ScaleStore(js).put_override(Override(2, now + 300, now, "alice"), expected=0)  # scale set 2
                link = SimpleNamespace(nc=nc, js=js, ready=asyncio.Event())
                link.ready.set()
                autoscaler = Autoscaler(settings.autoscaler,
                                        AutoscalerDeps.standalone(settings, link, node_id="up-quiet", backend=scaler))
                task = asyncio.create_task(autoscaler.run(stop))
                try:
                    await until(lambda: scaler.current_replicas() == 2, timeout=30, what="the override applied")
                    await scaler.wait_drained()
                finally:
                    stop.set()
                    await task
                return autoscaler
            finally:
                await nc.close()

        autoscaler = asyncio.run(main())
        assert scaler.worker_names == ["worker-2", "worker-3"]  # before: ["worker-1", "worker-2"]
        assert not pid_alive(pids["worker-1"]) and pid_alive(pids["worker-3"])
        [scaled] = [d for d in autoscaler.shared.decisions if d["desired"] == 2 and d["current"] == 3]
        assert scaled["reason"].endswith(" (stops local-1 (quiet))"), scaled
        with httpx.Client(base_url=url, timeout=20) as http:  # the busy workers' ads still run, on their workers
            records = [http.get(f"/ads/{i}").json() for i in ids]
        assert sorted((r["status"], r.get("workerId")) for r in records) == [
            ("processing", "local-2"), ("processing", "local-3")], records
    finally:
        scaler.set_replicas(0)
