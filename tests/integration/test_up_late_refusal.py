"""``gamead up``: a child refused (exit 5) after its start is retried; the rest of the stack keeps running
(attack28b F1)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.stale_node import unlisted
from tests.support import pid_alive, start_worker, up_stack, wait_for

#: small bounds so stops take seconds, not the production defaults
FAST = {"GAMEAD_WORKER__DRAIN_TIMEOUT": "3", "GAMEAD_QUEUE__ACK_WAIT": "5", "GAMEAD_LOG__LEVEL": "WARNING"}


@pytest.mark.timeout(300)  # a stack's start, a repartitioning worker's start and a worker's exit, loaded machine
def test_a_worker_up_for_a_while_that_exits_5_is_named_and_restarted_and_the_stack_keeps_running(
        tmp_path: Path) -> None:
    """attack28b F1: another process repartitioned the drained queue (3 partitions) under a running ``gamead up``
    (1 partition); its worker, up and beating, saw the change, drained and exited 5, and ``gamead up`` said
    "worker-2 refused to start (exit code 5); not restarted" and stopped everything, the embedded nats-server
    (which the new-setting nodes used) included. A child's start ends when it is seen serving (a worker: its first
    registry heartbeat): its later exit 5 is one console line saying it stopped, with its reason, and a restart
    with back-off; nats-server and the API keep running. Refused again at its restart, the line counts the refusals
    in a row and gamead-up.json lists it as refused (review28 L2); its restarts are said after its first refusal only,
    and no line says a process refused at its start "died after its registry entry had expired" (attack28c F3)."""
    # a worker looks at the streams every 3-6 × api.topology_check_interval: seconds, not 15-30. Its restarts in a
    # row wait 0 (a first death: at once, restart58), 0.5, 1, 2, 4, 4 s (embedded.restart_backoff_cap 4; the default
    # 30 made it 0.5 … 16 s): 11.5 s of back-off, past registry.ttl (10 s) from its clean stop to the 7th refusal
    (tmp_path / "config.yaml").write_text("api: {topology_check_interval: 1}\nregistry: {heartbeat_interval: 0.5}\n"
                                          "embedded: {restart_backoff_cap: 4}\n")
    up = up_stack(tmp_path, "--workers", "1", "--no-autoscale", **FAST).start()
    try:
        output = up.wait_ready()
        nats_url = re.search(r"on (nats://127\.0\.0\.1:\d+)", output)
        assert nats_url is not None
        nats_pid, api_pid, worker = up.pid_of("nats-server"), up.pid_of("api"), up.pid_of("worker-1")
        with httpx.Client(base_url=up.url, timeout=10) as client:
            wait_for(lambda: any(n.get("id") == "local-1" and n.get("pid") == worker
                                 for n in client.get("/v1/workers").json()["items"]),
                     timeout=60, what="worker-1 beating (it is up)")
            # a live node on 1 refuses the repartition (attack42b F1): gamead up (so that it does not judge them),
            # its API and worker-1 frozen past their entries' expiry (registry.ttl), resumed once it is made
            assert up.popen is not None
            with unlisted(nats_url.group(1), up.popen.pid, api_pid, worker, token=up.nats_token):
                repartition = start_worker(nats_url.group(1), tmp_path, worker_id="repartitioner", ready=True,
                                           GAMEAD_QUEUE__PARTITIONS="3", GAMEAD_QUEUE__REPARTITION="true",
                                           GAMEAD_NATS__TOKEN=up.nats_token)  # the stack's NATS requires it
            try:
                assert "now 3 partition(s)" in repartition.output()
                said = f"worker-1 (pid {worker}) stopped with exit code 5 after running "
                line = wait_for(lambda: next((ln for ln in up.output().splitlines() if said in ln), None),
                                timeout=90, what="gamead up to name worker-1's exit 5")
                assert "(its configuration is refused now): " in line and "the queue has 3 partitions" in line, line
                assert "the rest keeps running; retrying at once" in line, line  # its first death in a row
                assert "not restarted" not in up.output() and "stopping" not in up.output(), up.output()[-3000:]
                # started again: with its old setting it is refused at once, said and retried with back-off
                wait_for(lambda: "worker-1 restarted (pid " in up.output(), timeout=30,
                         what="worker-1 started again")
                said_again = wait_for(lambda: re.search(
                    r"worker-1 \(pid \d+\) refused to start \(exit code 5\) \(2 times in a row: retried for as long "
                    r"as it is refused, said every 10 tries\): .*retrying in", up.output()),
                    timeout=60, what="the restarted worker-1's refusal said, with its count")
                assert "queue.partitions is 1 but the work streams" in said_again.group(0)
                # review28 L2: not "up" in silence: gamead-up.json lists it as refused, with its tries and reason
                refused = wait_for(lambda: json.loads((up.data_dir / "gamead-up.json").read_text())["refused"],
                                   timeout=10, what="worker-1 listed as refused in gamead-up.json")
                assert [(r["name"], r["tries"] >= 1, "queue.partitions is 1 but" in r["reason"])
                        for r in refused] == [("worker-1", True, True)], refused
                # attack28c F3: refused again and again, its retries are not said one by one (the refusal lines
                # carry the count), nor is the process refused at its start said to have died holding deliveries
                wait_for(lambda: json.loads((up.data_dir / "gamead-up.json").read_text())["refused"][0]["tries"] >= 7,
                         timeout=120, what="worker-1 refused 7 times in a row")
                out = up.output()  # registry.ttl (10 s) after worker-1's clean stop, its entry's delete marker is gone
                assert "died after its registry entry had expired" not in out, out[-3000:]
                assert out.count("worker-1 restarted (pid ") == 1, out[-3000:]  # after its first refusal only
                assert up.popen is not None and up.popen.poll() is None, up.output()[-3000:]
                assert pid_alive(nats_pid) and up.running_pid("nats-server") == nats_pid  # NATS keeps serving
                assert pid_alive(api_pid) and up.running_pid("api") == api_pid
                assert client.get("/healthz").status_code == 200  # the API answers (unready: topology changed)
                assert repartition.alive()  # the new-setting node still has its NATS
            finally:
                repartition.stop(timeout=10)
    finally:
        up.kill_everything()
