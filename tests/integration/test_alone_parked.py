"""A suspect ad waiting to run alone at the queue starts once its worker's pull loop parks anywhere, not only in the
wait for a slot (alone52, gamead_core.worker.alone).

Before its attempt a suspect ad waits until its worker has no pull request at nats-server or under way. "Under way"
was read as "the pull loop is not waiting for a slot": a worker told quiet (``gamead workers quiet``) or draining
(SIGTERM) parks its loop elsewhere (the quiet's hold, the stop), so the suspect ad waited the whole bound
(``queue.idle_wait`` + 3 s: 11 s here) and logged a false WARNING ("runs alone while this worker may still be given
ads"). Now the loop says when its own pull (and the start step of what it brought) is under way: quiet, its long
polls dropped, the suspect ad starts at once; draining, once the long polls still at the server have ended."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.integration.dlq_lane import POISON
from tests.integration.test_alone_at_queue import LEVEL, SETTINGS
from tests.support import (
    Proc,
    ad,
    clean_env,
    run_gamead,
    start_api,
    start_worker,
    wait_for,
)

#: SETTINGS: long polls live 8 s, so a suspect ad's wait is bounded at 8 + 1 + 2 = 11 s (gamead_core.worker.alone:
#: QueueSide.bound)
FALSE_ALARM = "runs alone while this worker may still be given ads"
#: Seconds a quiet worker's suspect ad may take to start once the quiet is answered (its long polls are dropped by
#: then); the bound it waited before is ~10 s later
QUIET_START = 4.0


@pytest.mark.timeout(180)
@pytest.mark.parametrize("how", ["quiet", "drain"])
def test_a_suspect_ad_waiting_while_its_worker_parks_its_pull_loop_starts_without_a_false_warning(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path, how: str,
) -> None:
    nats_url = fresh_nats().url
    api, url = start_api(nats_url, tmp_path, **SETTINGS)
    procs.append(api)

    def worker(run: str, **env: str) -> Proc:  # one id, as `gamead up` restarts it: the second adopts the first's
        proc = start_worker(nats_url, tmp_path / run, worker_id="w", concurrency=2, **SETTINGS, **POISON, **env)
        procs.append(proc)
        return proc

    with httpx.Client(base_url=url, timeout=20) as http:
        first = worker("1", GAMEAD_WORKER__FAULTS__MODE="crash")
        resp = http.post("/ads", json=ad("Poison Pill", LEVEL))
        assert resp.status_code == 202, resp.text
        poison = str(resp.json()["id"])
        wait_for(lambda: not first.alive(), timeout=60, what="the poison ad to crash its first worker")
    # its successor charges the crash and takes the poison back suspect: it waits to run alone (its long polls, placed
    # as it took it, live 8 s at the server), then hangs in its attempt
    second = worker("2", GAMEAD_WORKER__FAULTS__MODE="hang")
    wait_for(lambda: f"ad {poison} runs alone:" in second.output(), timeout=60,
             what="the suspect poison ad to wait to run alone on the second worker")
    started = f"injecting a hang fault into ad {poison}"
    assert started not in second.output()  # still waiting for its worker's long polls
    if how == "quiet":
        told = run_gamead("workers", "quiet", "w", env=clean_env(GAMEAD_API_URL=url))
        assert told.returncode == 0, told.stderr
        wait_for(lambda: started in second.output(), timeout=QUIET_START,
                 what="the suspect ad to start once its quiet worker dropped its long polls")
    else:
        second.signal(signal.SIGTERM)  # drains: its ad runs on for worker.drain_timeout (25 s)
        wait_for(lambda: started in second.output(), timeout=30,
                 what="the suspect ad to start once its draining worker's long polls ended")
    assert FALSE_ALARM not in second.output()
