"""A suspect ad runs alone at the queue too: while it runs, its worker has no pull request at nats-server, so an ad
published meanwhile cannot be delivered to a worker it may crash (lastmoments51, gamead_core.worker.alone).

The crash-loop test (tests/integration/test_worker_faults.py, ~3 in 21 runs at load 25) lost an innocent ad to
``ack_wait`` (300 s there): nats-server delivered it to a long poll of the worker whose suspect ad (the poison) was
starting, ~1 ms before the poison crashed it. The worker never read it, so never announced it (registry ``holding``),
and the recovery could not hand it back. Here that moment is held open: the suspect ad "hangs" (fault mode ``hang``),
its worker is frozen (SIGSTOP) once it runs, an ad is published, the worker is killed. Before, the worker's long polls
(placed as it took the suspect ad, living ``queue.idle_wait``) were still waiting at the server: the ad went to the
frozen worker and waited ack_wait. Now the suspect ad starts only once those long polls have ended: the ad waits in
the stream, and the worker started in the killed one's place runs it at once."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.integration.dlq_lane import POISON
from tests.long_polled import waiting_pulls
from tests.support import (
    Proc,
    ad,
    all_threads_stopped,
    start_api,
    start_worker,
    wait_for,
    wait_terminal,
)

LEVEL = 3
#: a long poll lives 8 s (queue.idle_wait, below registry.ttl − 1.5 × heartbeat: gamead_core.worker.idle.poll_life):
#: long enough that, before, the freeze below always came while the suspect ad's worker still had them at the server
SETTINGS = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5", "GAMEAD_REGISTRY__TTL": "12",
            "GAMEAD_QUEUE__IDLE_WAIT": "8", "GAMEAD_QUEUE__ACK_WAIT": "300", "GAMEAD_WORKER__BACKOFF_BASE": "0.2",
            "GAMEAD_WORKER__MAX_ATTEMPTS": "5"}


@pytest.mark.timeout(180)
def test_an_ad_published_while_a_suspect_ad_runs_alone_is_not_lost_with_its_worker(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path,
) -> None:
    nats_url = fresh_nats().url
    api, url = start_api(nats_url, tmp_path, **SETTINGS)
    procs.append(api)

    def worker(run: str, **env: str) -> Proc:  # one id, as `gamead up` restarts it: each adopts what the last held
        proc = start_worker(nats_url, tmp_path / run, worker_id="w", concurrency=2, **SETTINGS, **env)
        procs.append(proc)
        return proc

    with httpx.Client(base_url=url, timeout=20) as http:
        def submit(title: str) -> str:
            resp = http.post("/ads", json=ad(title, LEVEL))
            assert resp.status_code == 202, resp.text
            return str(resp.json()["id"])

        first = worker("1", GAMEAD_WORKER__FAULTS__MODE="crash", **POISON)
        poison = submit("Poison Pill")
        wait_for(lambda: not first.alive(), timeout=60, what="the poison ad to crash its first worker")
        # its successor charges the crash and hands the poison back suspect: it runs alone, and hangs there
        second = worker("2", GAMEAD_WORKER__FAULTS__MODE="hang", **POISON)
        wait_for(lambda: f"injecting a hang fault into ad {poison}" in second.output(), timeout=60,
                 what="the suspect poison ad to run alone on the second worker")
        second.signal(signal.SIGSTOP)  # its last moments, held open: whatever reaches it now, it never reads
        wait_for(lambda: all_threads_stopped(second.pid), timeout=10, interval=0.005, what="the worker to stop")
        polls = waiting_pulls(nats_url, (LEVEL,))[LEVEL]  # live long polls at the server
        innocent = submit("Innocent Bystander")
        second.kill()  # as the poison's crash would
        worker("3")
        record = wait_terminal(http, innocent, timeout=60)  # ack_wait is 300 s: only a recovery brings it sooner
        assert record["status"] == "completed", record
        assert record["attempts"] == 1, record
        assert polls == 0, f"{polls} long poll(s) of the suspect ad's worker were waiting at the server as it ran"
        assert wait_terminal(http, poison, timeout=60)["status"] == "completed"
