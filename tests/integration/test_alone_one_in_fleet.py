"""At most one suspect ad runs alone in the whole fleet: the others are handed back and their workers go on with
ordinary ads (poison53, gamead_core.worker.turn_rule / suspect_turn).

A suspect ad runs alone on its worker: its gate blocks every other analysis and pull until the ad is settled. Before,
each worker given a suspect ad ran it alone, so after a crash with several ads in flight every worker could be
blocked at once (a poison ad among them crashing the next one again): 4 poison ads among 400 held the whole fleet
of a drill for 15-39 s at a time. Here two suspect ads "hang" (fault mode ``hang``, ``worker.task_timeout`` 120 s):
one runs alone on worker ``w``, and worker ``b`` is given the other. Before, ``b`` ran it alone too and the plain ads
submitted then waited for the 120 s time limit; now ``b`` hands it back (the lease ``suspect`` is ``w``'s) and
completes them. Once ``w`` is killed its lease is freed with it (its recovery, or its registry entry gone), and the
next suspect ad runs alone on ``b``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, ad, start_api, start_worker, wait_for, wait_terminal

LEVEL = 3
SETTINGS = {"GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5", "GAMEAD_REGISTRY__TTL": "6", "GAMEAD_QUEUE__IDLE_WAIT": "3",
            "GAMEAD_QUEUE__ACK_WAIT": "300", "GAMEAD_WORKER__TASK_TIMEOUT": "120",
            "GAMEAD_WORKER__BACKOFF_BASE": "0.2", "GAMEAD_WORKER__MAX_ATTEMPTS": "5"}
#: the ads titled "Hold …" hang in their analysis (until the 120 s time limit): a suspect ad held running alone
HOLD = {"GAMEAD_WORKER__FAULTS__RATE": "1", "GAMEAD_WORKER__FAULTS__MATCH": "^Hold",
        "GAMEAD_WORKER__FAULTS__MODE": "hang"}
#: Seconds a plain ad may take here; a worker blocked by a suspect ad holds it for the 120 s time limit
PLAIN_DONE = 45


@pytest.mark.timeout(240)
def test_a_second_suspect_ad_is_handed_back_while_one_runs_alone_and_its_worker_keeps_serving(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path,
) -> None:
    nats_url = fresh_nats().url
    api, url = start_api(nats_url, tmp_path, **SETTINGS)
    procs.append(api)

    def worker(run: str, worker_id: str, concurrency: int) -> Proc:
        proc = start_worker(nats_url, tmp_path / run, worker_id=worker_id, concurrency=concurrency, **SETTINGS,
                            **HOLD)
        procs.append(proc)
        return proc

    def hung(proc: Proc, ad_id: str) -> bool:
        return f"injecting a hang fault into ad {ad_id}" in proc.output()

    with httpx.Client(base_url=url, timeout=20) as http:
        def submit(title: str) -> str:
            resp = http.post("/ads", json=ad(title, LEVEL))
            assert resp.status_code == 202, resp.text
            return str(resp.json()["id"])

        first = worker("1", "w", 2)
        held = [submit("Hold One"), submit("Hold Two")]
        wait_for(lambda: all(hung(first, h) for h in held), timeout=60, what="both ads to run on the first worker")
        first.kill()  # two analyses in flight: its next incarnation makes both suspect, none charged
        w = worker("2", "w", 1)  # adopts them; runs one alone (its gate blocks it), the other waits in the queue
        alone = wait_for(lambda: next((h for h in held if hung(w, h)), None), timeout=60,
                         what="a suspect ad to run alone on the restarted worker")
        other = held[1 - held.index(alone)]
        b = worker("3", "b", 2)
        wait_for(lambda: f"suspect ad {other} handed back" in b.output() or f"ad {other} runs alone" in b.output(),
                 timeout=60, what="the second worker to be given the other suspect ad")
        plain = [submit(f"Plain {n}") for n in range(3)]
        for ad_id in plain:  # before: worker b ran the other suspect ad alone, hung, and nothing else ran
            record = wait_terminal(http, ad_id, timeout=PLAIN_DONE)
            assert record["status"] == "completed" and record["attempts"] == 1, record
        assert not hung(b, other), "the second suspect ad ran alone beside the first"
        assert http.get(f"/ads/{other}").json()["attempts"] == 0  # handed back uncharged, again and again

        w.kill()  # dies holding the lease: freed by its recovery (b's reaper, once w's entry expired), or taken over
        wait_for(lambda: hung(b, other) or hung(b, alone), timeout=60,  # at b's next suspect ad then
                 what="the next suspect ad to run alone on the worker left")
        freed = ("suspect lease released: worker w", "has no registry entry any more")
        assert any(line in b.output() for line in freed), "the lease's release was not said"
